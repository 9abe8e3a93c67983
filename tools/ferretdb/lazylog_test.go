package main

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
)

// The lazy handler writes what the text handler writes, attributes and groups in order, and
// only for enabled levels.
func TestLazyHandlerWritesWhatTheTextHandlerWrites(t *testing.T) {
	opts := &slog.HandlerOptions{
		Level: slog.LevelWarn,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // no time: the two outputs must compare equal
			}
			return a
		},
	}
	log := func(l *slog.Logger) {
		l = l.With("conn", 7).WithGroup("sql").With("args", []any{1, "x"})
		l.Debug("never written", "n", 1)
		l.Warn("slow", "ms", 250)
	}
	var plain, lazy bytes.Buffer
	log(slog.New(slog.NewTextHandler(&plain, opts)))
	log(slog.New(newLazyHandler(slog.NewTextHandler(&lazy, opts))))
	if lazy.String() != plain.String() {
		t.Fatalf("lazy handler wrote\n%q\nthe text handler\n%q", lazy.String(), plain.String())
	}
	if want := "level=WARN msg=slow conn=7 sql.args=\"[1 x]\" sql.ms=250\n"; plain.String() != want {
		t.Fatalf("text handler wrote %q, want %q", plain.String(), want)
	}
	if newLazyHandler(slog.NewTextHandler(&lazy, opts)).WithAttrs([]slog.Attr{slog.Int("a", 1)}).Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("debug is enabled below a warn handler")
	}
}
