// A small client for the operator API in integration tests (fetch, JSON in and out).
import { startTestAcs, type TestAcs } from './acs';
import type { Config } from '../../src/config';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export class ApiClient {
  constructor(
    readonly base: string,
    readonly token?: string,
  ) {}

  as(token: string | undefined): ApiClient {
    return new ApiClient(this.base, token);
  }

  async req<T = any>(
    method: string,
    path: string,
    body?: unknown,
    opts: { headers?: Record<string, string>; raw?: string | Buffer } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (this.token !== undefined && !('Authorization' in headers)) headers.Authorization = `Bearer ${this.token}`;
    let payload: string | Buffer | undefined = opts.raw;
    if (body !== undefined && payload === undefined) {
      payload = JSON.stringify(body);
      headers['Content-Type'] ??= 'application/json';
    }
    const res = await fetch(this.base + path, { method, headers, body: payload });
    const text = await res.text();
    let parsed: unknown = undefined;
    if (text && (res.headers.get('content-type') ?? '').includes('json')) parsed = JSON.parse(text);
    return { status: res.status, body: parsed as T, text, headers: res.headers };
  }

  get<T = any>(path: string) {
    return this.req<T>('GET', path);
  }
  post<T = any>(path: string, body?: unknown) {
    return this.req<T>('POST', path, body);
  }
  delete<T = any>(path: string) {
    return this.req<T>('DELETE', path);
  }
}

/** A test ACS with its API, an admin client, and fast background loops. */
export async function startApiAcs(overrides: Partial<Config> = {}): Promise<{ acs: TestAcs; api: ApiClient; anon: ApiClient }> {
  const acs = await startTestAcs({
    adminToken: ADMIN_TOKEN,
    apiHost: '127.0.0.1',
    apiCheckResponses: true,
    taskSweepMs: 50,
    campaignTickMs: 100,
    taskRetryBackoffMs: 100,
    crMinIntervalMs: 0,
    ...overrides,
  });
  const base = `http://127.0.0.1:${acs.apiPort}`;
  return { acs, api: new ApiClient(base, ADMIN_TOKEN), anon: new ApiClient(base) };
}

/** Polls fn until pred holds (or throws with the last value after timeoutMs). */
export async function until<T>(fn: () => Promise<T>, pred: (v: T) => boolean, timeoutMs = 5000, intervalMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (pred(v)) return v;
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(v).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Polls fn until it gives a truthy value, and returns that value. */
export async function eventually<T>(fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 5000): Promise<T> {
  return (await until(async () => fn(), (v) => Boolean(v), timeoutMs)) as T;
}

export const enc = encodeURIComponent;

/** Runs fns with at most n at a time. */
export async function pool<T>(items: T[], n: number, fn: (item: T, i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}
