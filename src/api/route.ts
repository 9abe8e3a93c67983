// The operator API's route framework: one declaration per route feeds authentication, role
// checks, input validation, the audit log, metrics and the OpenAPI document, so what is
// documented is what is served.
//
// HOW TO ADD ROUTES
// -----------------
// A route module exports a function from the services to a list of routes, and is listed in
// ROUTE_MODULES in src/api/server.ts:
//
//   // src/api/things-routes.ts
//   import { z } from 'zod';
//   import { route, notFound, type Route } from './route';
//   import type { ApiServices } from './services';
//   import { Page, Timestamp, pageQuery } from './schemas';
//
//   const Thing = z.strictObject({ id: z.string(), createdAt: Timestamp });
//
//   export function thingsRoutes(s: ApiServices): Route[] {
//     return [
//       route({
//         method: 'get',
//         path: '/api/v1/things/{id}',          // OpenAPI style; {x} becomes an express :x
//         tag: 'things',
//         summary: 'One thing',
//         access: 'viewer',                    // 'viewer' | 'operator' | 'admin' | 'public'
//         params: z.strictObject({ id: z.string().max(64) }),
//         query: z.strictObject({ ...pageQuery }),  // always strict: unknown parameters → 400
//         response: { status: 200, description: 'the thing', schema: Thing },
//         errors: [404],                       // extra documented error statuses
//         async handler({ params }) {
//           const t = await s.things.get(params.id);
//           if (!t) throw notFound('thing', params.id);
//           return { id: t._id, createdAt: t.createdAt.toISOString() };
//         },
//       }),
//     ];
//   }
//
// - `body: <zod schema>`: a JSON body, validated (use z.strictObject: unknown fields → 400).
//   Without `body` (and without `stream`), a request carrying a body is refused with 400.
// - `stream: { contentType, description }`: the body is not read; the handler reads ctx.req (a
//   Readable), e.g. file uploads. Size limits are then the handler's job.
// - The handler returns the response body (validated against response.schema when
//   ACS_API_CHECK_RESPONSES is on, as in tests) and the framework sends it with
//   response.status. For 204, return nothing. For non-JSON answers (files, metrics text) set
//   response.contentType and write ctx.res yourself; nothing more is sent once headers are out.
// - Errors: throw `new ApiError(status, message, field?)`, or the helpers notFound(), conflict();
//   any error with a numeric `status` 400-499 (TaskError, FileError) becomes that answer.
//   Anything else is a 500 "internal error" (logged with the request id; never a stack trace).
// - Every mutating call (POST/PUT/PATCH/DELETE) by an authenticated caller is written to the
//   audit log before the answer leaves (who, what, params, redacted body, status, from where).
//   `auditTarget(ctx, result)` may name what was created or changed (default: result.id, else
//   params.id). `auditRead: true` audits a GET the same way: reads of personal data (issue 4).
// - Before validation, keys containing "$" anywhere in the body or query string, and query
//   values starting with "$", are refused with 400 naming the field (no MongoDB operators can
//   reach a query even if a schema were too loose).
import express, { type Request, type Response, type Router } from 'express';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { redact } from '../audit';
import { roleAtLeast, type Principal, type Role } from '../operators';
import { answeredLate, receiveWhileMoving } from './deadlines';
import type { ApiServices } from './services';

export type Access = Role | 'public';
export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

type AnyObject = z.ZodObject<z.ZodRawShape>;
type Empty = z.ZodObject<{}>;

export interface RouteContext<P extends AnyObject, Q extends AnyObject, B extends z.ZodType> {
  params: z.output<P>;
  query: z.output<Q>;
  body: z.output<B>;
  /** The caller (ANONYMOUS on public routes). */
  operator: Principal;
  /** Client address (honours ACS_TRUST_PROXY). */
  ip: string;
  req: Request;
  res: Response;
}

export interface RouteSpec<P extends AnyObject, Q extends AnyObject, B extends z.ZodType, R extends z.ZodType> {
  method: Method;
  path: string;
  tag: string;
  summary: string;
  description?: string;
  access: Access;
  params?: P;
  query?: Q;
  body?: B;
  stream?: { contentType: string; description: string };
  response: { status: number; description: string; schema?: R; contentType?: string };
  errors?: number[];
  auditTarget?: (ctx: RouteContext<P, Q, B>, result: z.input<R> | undefined) => string | undefined;
  /** Issue 4 (privacy): a read of personal data — audited like a change. */
  auditRead?: boolean;
  handler: (ctx: RouteContext<P, Q, B>) => Promise<z.input<R> | void>;
}

/** A route with its types erased, as the framework handles it. */
export interface Route {
  spec: RouteSpec<AnyObject, AnyObject, z.ZodType, z.ZodType>;
}

export function route<
  P extends AnyObject = Empty,
  Q extends AnyObject = Empty,
  B extends z.ZodType = z.ZodUndefined,
  R extends z.ZodType = z.ZodUnknown,
>(spec: RouteSpec<P, Q, B, R>): Route {
  return { spec: spec as unknown as Route['spec'] };
}

export const ANONYMOUS: Principal = { id: 'anonymous', name: 'anonymous', role: 'viewer' };

// ---- errors -------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export const notFound = (what: string, id: string) => new ApiError(404, `${what} ${id} not found`);
export const conflict = (message: string) => new ApiError(409, message);

export const ErrorBody = z.strictObject({
  error: z.strictObject({
    status: z.number().int(),
    message: z.string(),
    field: z.string().optional().describe('the input field at fault, e.g. "parameterValues[0].value"'),
    requestId: z.string().optional(),
  }),
});

const ERROR_TEXT: Record<number, string> = {
  400: 'invalid input (the message names the field)',
  401: 'no or unknown bearer token',
  403: 'the token\'s role does not allow this',
  404: 'not found',
  409: 'conflicts with the current state',
  413: 'request body too large',
  415: 'the body must be application/json',
  422: 'understood but cannot be done',
  503: 'a dependency is unavailable',
};

/** "a.b[0].c" from a path of keys and indexes. */
export function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += (out ? '.' : '') + String(k);
  }
  return out;
}

function zodError(err: z.ZodError, where: 'body' | 'query' | 'path'): ApiError {
  const issue = err.issues[0];
  let path: PropertyKey[] = [...issue.path];
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    path = [...path, issue.keys[0]];
    message = `unknown field (allowed: see the OpenAPI document)`;
  } else if (issue.code === 'invalid_type' && issue.input === undefined) {
    message = 'required';
  }
  const field = fieldName(path);
  const label = where === 'body' ? (field ? `body field "${field}"` : 'request body') : `${where === 'query' ? 'query' : 'path'} parameter "${field}"`;
  return new ApiError(400, `${label}: ${message}`, field || undefined);
}

/** The first key containing "$" (a MongoDB operator), as a field name, or null. */
export function operatorKey(value: unknown, path: PropertyKey[] = []): string | null {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const f = operatorKey(value[i], [...path, i]);
      if (f) return f;
    }
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k.includes('$')) return fieldName([...path, k]);
      const f = operatorKey(v, [...path, k]);
      if (f) return f;
    }
  }
  return null;
}

function checkQueryOperators(query: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(query)) {
    if (k.includes('$')) throw new ApiError(400, `query parameter "${k}": MongoDB operators are not accepted`, k);
    for (const x of Array.isArray(v) ? v : [v]) {
      if (typeof x === 'string' && x.startsWith('$')) throw new ApiError(400, `query parameter "${k}": values starting with "$" are not accepted`, k);
    }
  }
}

const hasBody = (req: Request) =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

// ---- mounting -----------------------------------------------------------------------------

const MUTATING = new Set<Method>(['post', 'put', 'patch', 'delete']);

export function expressPath(path: string): string {
  return path.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1');
}

/** Registers the routes on the router. */
export function mount(router: Router, routes: Route[], s: ApiServices): void {
  const json = express.json({ limit: s.config.apiMaxBodyBytes, strict: true, type: ['application/json', 'application/*+json'] });
  const readJson = (req: Request, res: Response) =>
    new Promise<void>((resolve, reject) => json(req, res, (err?: unknown) => (err ? reject(err) : resolve())));

  for (const { spec } of routes) {
    const action = `${spec.method.toUpperCase()} ${spec.path}`;
    router[spec.method](expressPath(spec.path), async (req: Request, res: Response) => {
      const started = process.hrtime.bigint();
      const requestId = randomUUID();
      res.setHeader('X-Request-Id', requestId);
      let operator: Principal | null = null;
      let params: Record<string, string> | undefined;
      let body: unknown;
      let status = 500;
      let payload: unknown;
      let error: ApiError | null = null;
      let result: unknown;
      let ctx: RouteContext<AnyObject, AnyObject, z.ZodType> | undefined;
      try {
        operator = spec.access === 'public' ? ANONYMOUS : await authenticate(req, s);
        if (spec.access !== 'public' && !roleAtLeast(operator.role, spec.access)) {
          throw new ApiError(403, `this needs the ${spec.access} role; the token has ${operator.role}`);
        }
        checkQueryOperators(req.query as Record<string, unknown>);
        const p = (spec.params ?? z.strictObject({})).safeParse({ ...req.params });
        if (!p.success) throw zodError(p.error, 'path');
        params = p.data as Record<string, string>;
        const q = (spec.query ?? z.strictObject({})).safeParse({ ...(req.query as object) });
        if (!q.success) throw zodError(q.error, 'query');
        if (spec.body) {
          if (hasBody(req) && !req.is(['application/json', 'application/*+json'])) {
            throw new ApiError(415, 'the request body must be JSON (Content-Type: application/json)');
          }
          await readJson(req, res);
          const late = answeredLate(req);
          if (late) throw new ApiError(408, late);
          const raw = hasBody(req) ? (req.body as unknown) : undefined;
          const bad = operatorKey(raw);
          if (bad) throw new ApiError(400, `body field "${bad}": MongoDB operators are not accepted`, bad);
          const b = spec.body.safeParse(raw);
          if (!b.success) throw zodError(b.error, 'body');
          body = b.data;
        } else if (!spec.stream && hasBody(req)) {
          throw new ApiError(400, `${action} takes no request body`);
        }
        if (spec.stream) receiveWhileMoving(req, s.config.apiUploadIdleMs); // authorised: it may take long
        ctx = { params, query: q.data, body, operator, ip: req.ip ?? req.socket.remoteAddress ?? 'unknown', req, res };
        result = await spec.handler(ctx);
        status = spec.response.status;
        if (!res.headersSent && spec.response.schema && status !== 204 && s.config.apiCheckResponses) {
          const check = spec.response.schema.safeParse(JSON.parse(JSON.stringify(result ?? null)));
          if (!check.success) {
            const i = check.error.issues[0];
            s.log.error({ route: action, issue: i }, 'API response does not match its schema');
            throw new ApiError(500, `response does not match the documented schema at "${fieldName(i.path)}": ${i.message}`);
          }
        }
        payload = result;
      } catch (err) {
        error = toApiError(err, s, action, requestId);
        status = error.status;
        payload = { error: { status, message: error.message, ...(error.field ? { field: error.field } : {}), requestId } };
      }
      if (operator && operator !== ANONYMOUS && (MUTATING.has(spec.method) || spec.auditRead)) {
        let target: string | undefined;
        try {
          target = spec.auditTarget && ctx && !error ? spec.auditTarget(ctx, result as never) : undefined;
        } catch {
          target = undefined;
        }
        target ??= (result && typeof result === 'object' && 'id' in result ? String((result as { id: unknown }).id) : undefined) ?? params?.id;
        try {
          await s.audit.record({
            at: new Date(),
            operator,
            action,
            method: spec.method.toUpperCase(),
            path: req.originalUrl.split('?')[0],
            ...(params && Object.keys(params).length ? { params } : {}),
            ...(body !== undefined ? { body: redact(body) } : {}),
            status,
            ...(target ? { target } : {}),
            ...(error ? { error: error.message } : {}),
            remote: req.ip ?? req.socket.remoteAddress ?? 'unknown',
            ...(req.headers['user-agent'] ? { userAgent: String(req.headers['user-agent']).slice(0, 200) } : {}),
          });
        } catch (err) {
          s.log.error({ err: (err as Error).message, action }, 'writing the audit log failed');
          if (!error) {
            // An unrecorded change must not look like a recorded one.
            status = 500;
            payload = { error: { status, message: 'the change was made but could not be written to the audit log', requestId } };
          }
        }
      }
      if (!res.headersSent) {
        if (error?.headers) res.set(error.headers);
        if (status === 204 || (payload === undefined && !error)) res.status(status).end();
        else res.status(status).json(payload);
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      s.metrics.apiRequests.inc({ method: spec.method.toUpperCase(), route: spec.path, status: String(status) });
      s.metrics.apiLatency.observe({ method: spec.method.toUpperCase(), route: spec.path }, seconds);
    });
  }
}

async function authenticate(req: Request, s: ApiServices): Promise<Principal> {
  const header = req.headers.authorization;
  if (!header) throw new ApiError(401, 'missing Authorization: Bearer <token>', undefined, { 'WWW-Authenticate': 'Bearer' });
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new ApiError(401, 'the Authorization header must be "Bearer <token>"', undefined, { 'WWW-Authenticate': 'Bearer' });
  const p = await s.operators.authenticate(m[1]);
  if (!p) throw new ApiError(401, 'unknown or revoked token', undefined, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
  return p;
}

/** Maps anything thrown to an answer: client errors keep their message, the rest become 500. */
export function toApiError(err: unknown, s: Pick<ApiServices, 'log'>, action: string, requestId: string): ApiError {
  if (err instanceof ApiError) {
    if (err.status >= 500) s.log.error({ action, requestId, err: err.message }, 'API request failed');
    return err;
  }
  const e = err as { status?: unknown; statusCode?: unknown; type?: string; message?: string; field?: string; expose?: boolean };
  // body-parser errors
  if (e.type === 'entity.too.large') return new ApiError(413, `request body exceeds the limit of ${(err as { limit?: number }).limit} bytes`);
  if (e.type === 'entity.parse.failed') return new ApiError(400, 'request body: not valid JSON');
  if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') return new ApiError(415, e.message ?? 'unsupported body encoding');
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined && status >= 400 && status < 500 && typeof e.message === 'string') {
    const field = typeof e.field === 'string' ? e.field : undefined;
    return new ApiError(status, field && !e.message.includes(field) ? `body field "${field}": ${e.message}` : e.message, field);
  }
  s.log.error({ action, requestId, err: e.message, stack: (err as Error).stack }, 'API request failed');
  return new ApiError(500, 'internal error');
}

// ---- OpenAPI --------------------------------------------------------------------------------

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  return out;
}

function parameters(obj: AnyObject | undefined, where: 'path' | 'query'): JsonSchema[] {
  if (!obj) return [];
  return Object.entries(obj.shape).map(([name, prop]) => {
    const t = prop as z.ZodType;
    const schema = jsonSchema(t, 'input');
    const description = typeof schema.description === 'string' ? schema.description : undefined;
    return {
      name,
      in: where,
      required: where === 'path' || !t.safeParse(undefined).success,
      ...(description ? { description } : {}),
      schema,
    };
  });
}

/** The OpenAPI 3.1 document of these routes. */
export function openApiDocument(routes: Route[], info: { title: string; version: string; description?: string }): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const errorContent = { 'application/json': { schema: jsonSchema(ErrorBody, 'output') } };
  for (const { spec } of routes) {
    const responses: Record<string, JsonSchema> = {};
    const r = spec.response;
    const content =
      r.status === 204
        ? undefined
        : r.contentType
          ? { [r.contentType]: { schema: r.schema ? jsonSchema(r.schema, 'output') : { type: 'string' } } }
          : { 'application/json': { schema: r.schema ? jsonSchema(r.schema, 'output') : {} } };
    responses[String(r.status)] = { description: r.description, ...(content ? { content } : {}) };
    const errors = new Set<number>(spec.errors ?? []);
    errors.add(400);
    if (spec.access !== 'public') {
      errors.add(401);
      if (spec.access !== 'viewer') errors.add(403);
    }
    if (spec.params && Object.keys(spec.params.shape).length) errors.add(404);
    if (spec.body) {
      errors.add(413);
      errors.add(415);
    }
    for (const e of [...errors].sort()) responses[String(e)] = { description: ERROR_TEXT[e] ?? 'error', content: errorContent };
    const op: JsonSchema = {
      operationId: operationId(spec.method, spec.path),
      tags: [spec.tag],
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      ...(spec.access === 'public' ? { security: [] } : { 'x-required-role': spec.access }),
      parameters: [...parameters(spec.params, 'path'), ...parameters(spec.query, 'query')],
      responses,
    };
    if (spec.body) op.requestBody = { required: !spec.body.safeParse(undefined).success, content: { 'application/json': { schema: jsonSchema(spec.body, 'input') } } };
    if (spec.stream) op.requestBody = { required: true, description: spec.stream.description, content: { [spec.stream.contentType]: { schema: { type: 'string', format: 'binary' } } } };
    (paths[spec.path] ??= {})[spec.method] = op;
  }
  return {
    openapi: '3.1.0',
    info,
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an operator token (acs token create) or ACS_ADMIN_TOKEN' } } },
    paths,
  };
}

function operationId(method: string, path: string): string {
  const words = path
    .replace(/^\/api\/v1\//, '')
    .split('/')
    .filter(Boolean)
    .map((p) => (p.startsWith('{') ? 'by-' + p.slice(1, -1) : p));
  return [method, ...words].join('-').replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase()).replace(/[^A-Za-z0-9]/g, '');
}
