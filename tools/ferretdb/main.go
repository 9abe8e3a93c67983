// Command ferretdb runs FerretDB v1.24.2 with the SQLite handler as the local,
// MongoDB-compatible database for development and tests. Production uses real
// MongoDB; this exists because mongod cannot be installed on our machines.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dir := flag.String("dir", "./data", "directory for the SQLite files (one per database)")
	logLevel := flag.String("log-level", "warn", "log level: debug, info, warn, error")
	lifeline := flag.Bool("stdin-lifeline", false, "exit when standard input closes (the parent died)")
	pprofAddr := flag.String("pprof", "", "serve Go profiles (net/http/pprof) on this address, for finding where the database spends its time")
	flag.Parse()
	if *pprofAddr != "" {
		go func() { _ = http.ListenAndServe(*pprofAddr, nil) }()
	}

	abs, err := filepath.Abs(*dir)
	if err != nil {
		fail(err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		fail(err)
	}

	// The Go heap here is small (the documents of the commands in flight), and collecting it at
	// the default GOGC=100 took a tenth of the database's CPU under load. At 400 it is collected
	// a quarter as often, and may grow to five times its live size in between (GOGC=100: twice).
	// GOGC set in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fail(err)
	}
	logger := slog.New(newLazyHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Handler:  "sqlite",
		// WAL with synchronous=NORMAL: commits stop waiting for fsync (the WAL is synced at
		// checkpoints). A development database may lose the last commits on a power cut, and
		// in exchange each write costs microseconds instead of a disk flush.
		// A 64 MiB page cache per connection (SQLite's default is 2 MiB): with 10,000 devices
		// the default cache made every lookup read pages again, and sessions/s fell by half.
		SQLiteURL: "file:" + abs + "/?_pragma=synchronous(NORMAL)&_pragma=cache_size(-65536)",
		Logger:    logger,
	})
	if err != nil {
		fail(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// A parent that dies without cleaning up (SIGKILL, crash) must not leave the database
	// running: its end of our stdin closes, and we stop.
	if *lifeline {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}

	go indexIDs(ctx, abs, logger)

	// The parent process waits for this line to know the port accepts connections.
	fmt.Printf("ferretdb ready %s\n", f.MongoDBURI())
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ferretdb:", err)
	os.Exit(1)
}
