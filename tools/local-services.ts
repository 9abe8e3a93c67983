// Local services for development, tests and benchmarks: the FerretDB build under
// tools/ferretdb (MongoDB wire protocol on SQLite) and a redis-server. Production never uses
// this: it sets MONGODB_URL and REDIS_URL.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** The repository root (this file is dist/tools/local-services.js once built). */
export const ROOT = path.resolve(__dirname, '..', '..');
const FERRET_SRC = path.join(ROOT, 'tools', 'ferretdb');
export const FERRET_BIN = path.join(ROOT, '.local', 'bin', 'ferretdb');

export interface LocalService {
  url: string;
  stop(): Promise<void>;
  /** The server's process, when this module started it (benchmarks measure its CPU). */
  pid?: number;
}

/** Pids of a process's children (Linux /proc): an ACS cluster's workers, for tests and benchmarks. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const s = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function portAnswers(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.setTimeout(500);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** Builds the FerretDB binary when it is missing or older than its sources. */
export function buildFerretDb(say: (msg: string) => void = () => undefined): string {
  const sources = readdirSync(FERRET_SRC).filter((f) => f.endsWith('.go') || f === 'go.mod' || f === 'go.sum');
  const newest = Math.max(...sources.map((f) => statSync(path.join(FERRET_SRC, f)).mtimeMs));
  if (existsSync(FERRET_BIN) && statSync(FERRET_BIN).mtimeMs >= newest) return FERRET_BIN;
  say('building the local database (FerretDB, Go); the first build takes a minute or two');
  const r = spawnSync('go', ['build', '-o', FERRET_BIN, '.'], { cwd: FERRET_SRC, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) throw new Error(`cannot run the Go compiler (${r.error.message}); install Go or set MONGODB_URL`);
  if (r.status !== 0) throw new Error('building the local database failed; see the Go output above');
  return FERRET_BIN;
}

/** What a started child process printed: the last 64 KiB of its stdout and stderr. */
export type Output = () => string;

const OUTPUT_KEPT = 64 * 1024;

/**
 * Resolves once the child prints a line containing `marker` (stdout or stderr), with that line
 * and its output so far and from then on: both pipes stay drained for the child's whole life,
 * so it never blocks on a full pipe. Rejects, with the end of its output, when it exits first or
 * is not ready in time (it is killed then).
 */
export function waitForLine(
  child: ChildProcess,
  marker: string,
  timeoutMs: number,
  what: string,
  onOutput?: (chunk: Buffer) => void,
): Promise<{ line: string; output: Output }> {
  let out = '';
  const output: Output = () => out;
  return new Promise((resolve, reject) => {
    let waiting = true;
    const onData = (d: Buffer) => {
      onOutput?.(d);
      out = (out + d.toString('utf8')).slice(-OUTPUT_KEPT);
      const line = waiting ? out.split('\n').find((l, k, all) => k < all.length - 1 && l.includes(marker)) : undefined;
      if (line !== undefined) done(undefined, line);
    };
    const onExit = (code: number | null, signal: string | null) => done(new Error(`${what} exited during start-up (${signal ?? `code ${code}`})`));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done(new Error(`${what} did not start within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const done = (err?: Error, line = '') => {
      waiting = false;
      clearTimeout(timer);
      child.off('exit', onExit);
      if (err) reject(new Error(`${err.message}\n${out.slice(-4000)}`));
      else resolve({ line, output });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', onExit);
  });
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    });
}

/** Starts FerretDB on the given port (0 = any free one) with its data under dataDir. */
export async function startFerretDb(dataDir: string, port = 0, say?: (msg: string) => void): Promise<LocalService> {
  const bin = buildFerretDb(say);
  mkdirSync(dataDir, { recursive: true });
  const p = port || (await freePort());
  const child = spawn(bin, ['-listen', `127.0.0.1:${p}`, '-dir', dataDir, '-stdin-lifeline'], { stdio: ['pipe', 'pipe', 'pipe'] });
  await waitForLine(child, 'ferretdb ready', 60_000, 'FerretDB');
  return { url: `mongodb://127.0.0.1:${p}/`, stop: stopper(child), pid: child.pid };
}

export interface RedisOptions {
  port?: number;
  /** Directory for an append-only file; without it Redis keeps nothing on disk. */
  aofDir?: string;
}

/** Starts a private redis-server (tests of durability use aofDir). */
export async function startRedis(opts: RedisOptions = {}): Promise<LocalService> {
  const port = opts.port || (await freePort());
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--daemonize', 'no'];
  if (opts.aofDir) {
    mkdirSync(opts.aofDir, { recursive: true });
    args.push('--appendonly', 'yes', '--appendfsync', 'always', '--dir', opts.aofDir);
  } else {
    args.push('--appendonly', 'no');
  }
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.once('error', () => undefined);
  await waitForLine(child, 'Ready to accept connections', 15_000, 'redis-server');
  return { url: `redis://127.0.0.1:${port}`, stop: stopper(child), pid: child.pid };
}

/** The local Redis on 6379 when one answers, else a new one on that port. */
export async function useOrStartRedis(say: (msg: string) => void): Promise<LocalService> {
  if (await portAnswers(6379)) {
    say('using the Redis at 127.0.0.1:6379');
    return { url: 'redis://127.0.0.1:6379', stop: async () => undefined };
  }
  say('no Redis at 127.0.0.1:6379; starting redis-server there (nothing kept on disk)');
  return startRedis({ port: 6379 });
}

/** An `acs start` process (`node dist/src/cli.js start`) run by the demo, the bench or a test. */
export interface AcsProcess {
  child: ChildProcess;
  output: Output;
}

export interface SpawnAcsOptions {
  timeoutMs?: number;
  /** Node options before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Its own process group, so the caller can signal it and its workers together. */
  detached?: boolean;
  /** Sees every chunk of output (e.g. to copy it to a log file). */
  onOutput?: (chunk: Buffer) => void;
}

/** Starts the ACS with `env`; resolves once it announces its CWMP listener (the CLI prints that whatever the log level). */
export async function spawnAcs(env: NodeJS.ProcessEnv, opts: SpawnAcsOptions = {}): Promise<AcsProcess> {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), path.join(ROOT, 'dist', 'src', 'cli.js'), 'start'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  const { output } = await waitForLine(child, 'CWMP listening', opts.timeoutMs ?? 120_000, 'the ACS', opts.onOutput);
  return { child, output };
}
