// Job queues (issue 5), read-only for operators: counts per state, schedules with their next
// run, failed jobs with their reasons, recent jobs — and the page at /queues showing them.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ApiError, notFound, route, type Route } from './route';
import type { ApiServices } from './services';
import { Timestamp } from './schemas';

const QueueView = z.strictObject({
  name: z.string(),
  counts: z.strictObject({
    waiting: z.number().int(),
    active: z.number().int(),
    delayed: z.number().int(),
    completed: z.number().int().describe('kept: the last 100'),
    failed: z.number().int().describe('failed after their last attempt (kept: the last 500)'),
    paused: z.number().int(),
  }),
  schedules: z.array(z.strictObject({ name: z.string(), cron: z.string().optional(), everyMs: z.number().optional(), next: Timestamp.nullable() })),
  processing: z.boolean().describe('this process runs the queue\'s jobs'),
});

const JobView = z.strictObject({
  id: z.string(),
  name: z.string(),
  state: z.string(),
  attemptsMade: z.number().int(),
  data: z.unknown(),
  returnValue: z.unknown().optional(),
  failedReason: z.string().optional(),
  createdAt: Timestamp,
  finishedAt: Timestamp.optional(),
  delayUntil: Timestamp.optional(),
});

function jobsOf(s: ApiServices) {
  if (!s.jobs) throw new ApiError(503, 'job queues are not available in this ACS');
  return s.jobs;
}

export function queuesRoutes(s: ApiServices): Route[] {
  const Name = z.strictObject({ name: z.string().min(1).max(64) });
  const known = (name: string) => {
    if (!jobsOf(s).names().includes(name)) throw notFound('queue', name);
  };
  return [
    route({
      method: 'get',
      path: '/api/v1/queues',
      tag: 'queues',
      summary: 'Every job queue: jobs per state, schedules and their next run',
      access: 'viewer',
      response: { status: 200, description: 'the queues', schema: z.strictObject({ items: z.array(QueueView) }) },
      async handler() {
        return { items: await jobsOf(s).view() };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/queues/{name}/failed',
      tag: 'queues',
      summary: 'Failed jobs of a queue with their reasons, newest first',
      access: 'viewer',
      params: Name,
      query: z.strictObject({
        limit: z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(1).max(500)).optional(),
        offset: z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(0).max(100_000)).optional(),
      }),
      response: {
        status: 200,
        description: 'failed jobs',
        schema: z.strictObject({
          total: z.number().int(),
          items: z.array(z.strictObject({ id: z.string(), name: z.string(), failedReason: z.string(), attemptsMade: z.number().int(), data: z.unknown(), createdAt: Timestamp, failedAt: Timestamp.optional() })),
        }),
      },
      async handler({ params, query }) {
        known(params.name);
        return jobsOf(s).failed(params.name, query.offset ?? 0, query.limit ?? 50);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/queues/{name}/jobs',
      tag: 'queues',
      summary: 'Recent jobs of a queue in one state (completed ones with their result)',
      access: 'viewer',
      params: Name,
      query: z.strictObject({
        state: z.enum(['completed', 'active', 'waiting', 'delayed']),
        limit: z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(1).max(200)).optional(),
      }),
      response: { status: 200, description: 'jobs', schema: z.strictObject({ items: z.array(JobView) }) },
      async handler({ params, query }) {
        known(params.name);
        return { items: await jobsOf(s).jobs(params.name, query.state, query.limit ?? 20) };
      },
    }),
    ...pageRoutes(),
  ];
}

// ---- the page (web/queues.*; signs in with an API token like the report page) ----------------

const ROOT = [path.resolve(__dirname, '..', '..', '..'), path.resolve(__dirname, '..', '..')].find((p) => existsSync(path.join(p, 'package.json'))) ?? process.cwd();
const FILES: Record<string, string> = { 'queues.html': 'text/html; charset=utf-8', 'queues.js': 'text/javascript; charset=utf-8', 'queues.css': 'text/css; charset=utf-8' };
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

function webFile(name: string): Buffer | null {
  for (const c of [path.join(ROOT, 'dist', 'web', name), path.join(ROOT, 'web', name)]) if (existsSync(c)) return readFileSync(c);
  return null;
}

function pageRoutes(): Route[] {
  const send = (name: string, res: import('express').Response) => {
    const b = webFile(name);
    if (!b) throw new ApiError(404, `web/${name} is not installed`);
    res.setHeader('Content-Security-Policy', CSP);
    res.type(FILES[name]).status(200).send(b);
  };
  return [
    route({
      method: 'get',
      path: '/queues',
      tag: 'web',
      summary: 'The job queues page (HTML; signs in with an API token)',
      access: 'public',
      response: { status: 200, description: 'the page', contentType: 'text/html' },
      async handler({ res }) {
        send('queues.html', res);
      },
    }),
    route({
      method: 'get',
      path: '/queues/assets/{file}',
      tag: 'web',
      summary: 'Script and style of the job queues page',
      access: 'public',
      params: z.strictObject({ file: z.enum(['queues.js', 'queues.css']) }),
      response: { status: 200, description: 'the file', contentType: 'application/octet-stream' },
      async handler({ params, res }) {
        send(params.file, res);
      },
    }),
  ];
}
