// The operator API listener (express, its own port: ACS_API_PORT, default 7557). Routes are
// declared in the *-routes.ts modules with the framework in route.ts; this file lists them,
// adds the HTTP hardening that applies to every answer and serves the OpenAPI document made
// from the same declarations.
import http from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import { auditRoutes } from './audit-routes';
import { campaignsRoutes } from './campaigns-routes';
import { devicesRoutes } from './devices-routes';
import { filesRoutes } from './files-routes'; // files (issue 3, connection requests & files)
import { operatorsRoutes } from './operators-routes';
import { receiveDeadline } from './deadlines';
import { mount, openApiDocument, toApiError, type Route } from './route';
import type { ApiServices } from './services';
import { systemRoutes } from './system-routes';
import { tasksRoutes } from './tasks-routes';
import { consentRoutes } from './consent-routes'; // issue 4 (diagnostics program & privacy)
import { diagnosticsRoutes } from './diagnostics-routes'; // issue 4
import { privacyRoutes } from './privacy-routes'; // issue 4
import { rulesRoutes } from './rules-routes'; // issue 5
import { remediationsRoutes } from './remediations-routes'; // issue 5
import { queuesRoutes } from './queues-routes'; // issue 5
import { reportsRoutes } from './reports-routes'; // issue 6

/** Every route module; add yours here (see the comment at the top of route.ts). */
export const ROUTE_MODULES: ((s: ApiServices) => Route[])[] = [
  systemRoutes,
  devicesRoutes,
  tasksRoutes,
  campaignsRoutes,
  operatorsRoutes,
  auditRoutes,
  filesRoutes, // files (issue 3, connection requests & files)
  consentRoutes, // issue 4
  diagnosticsRoutes, // issue 4
  privacyRoutes, // issue 4
  rulesRoutes, // issue 5
  remediationsRoutes, // issue 5
  queuesRoutes, // issue 5
  reportsRoutes, // issue 6
];

export const API_VERSION = '1.0.0';

export interface ApiServer {
  port: number;
  close(): Promise<void>;
}

export function apiApp(services: Omit<ApiServices, 'openapi'>): express.Express {
  const s = services as ApiServices;
  const routes = ROUTE_MODULES.flatMap((m) => m(s));
  s.openapi = openApiDocument(routes, {
    title: 'ACS operator API',
    version: API_VERSION,
    description:
      'Find devices, read their parameters and sessions, push tasks and campaigns, follow them to the end. ' +
      'Every call needs `Authorization: Bearer <token>`; roles: viewer (read) < operator (tasks, files, tags) < admin (accounts, deletes, audit).',
  });

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  if (s.config.trustProxy) {
    const v = s.config.trustProxy;
    app.set('trust proxy', /^\d+$/.test(v) ? Number(v) : v === 'true' ? true : v);
  }
  app.use(receiveDeadline(s.config.apiRequestTimeoutMs));
  app.use((_req: Request, res: Response, next: NextFunction) => {
    // What helmet would set for a JSON API: nothing here is meant to be framed, sniffed or cached.
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  const router = express.Router({ strict: false, caseSensitive: true });
  mount(router, routes, s);
  app.use(router);
  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: { status: 404, message: `no route ${req.method} ${req.path}` } });
  });
  // Errors outside the handlers (e.g. a path that does not URL-decode).
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const requestId = randomUUID();
    const e = toApiError(err, s, `${req.method} ${req.path}`, requestId);
    if (res.headersSent) return;
    res.status(e.status).json({ error: { status: e.status, message: e.message, ...(e.field ? { field: e.field } : {}), requestId } });
  });
  return app;
}

export async function startApi(services: Omit<ApiServices, 'openapi'>, host: string, port: number): Promise<ApiServer> {
  const app = apiApp(services);
  const server = http.createServer(app);
  server.headersTimeout = 20_000;
  server.requestTimeout = 0; // src/api/deadlines.ts: a time per request, not one for all
  server.keepAliveTimeout = 5_000;
  const bound = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as { port: number }).port));
  });
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
