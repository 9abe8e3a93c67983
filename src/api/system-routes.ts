// Health, metrics and the OpenAPI document.
import { z } from 'zod';
import { route, type Route } from './route';
import type { ApiServices } from './services';

const Check = z.strictObject({ ok: z.boolean(), latencyMs: z.number().optional(), error: z.string().optional() });

export function systemRoutes(s: ApiServices): Route[] {
  return [
    route({
      method: 'get',
      path: '/healthz',
      tag: 'system',
      summary: 'Liveness, and whether MongoDB and Redis answer',
      description: '200 when both answer, 503 otherwise. No token needed (load balancers, orchestrators).',
      access: 'public',
      response: {
        status: 200,
        description: 'healthy',
        schema: z.strictObject({ status: z.enum(['ok', 'degraded']), uptimeSeconds: z.number(), mongodb: Check, redis: Check }),
      },
      errors: [503],
      async handler({ res }) {
        const h = await s.health();
        const body = { status: h.ok ? ('ok' as const) : ('degraded' as const), uptimeSeconds: Math.round(process.uptime()), mongodb: h.mongodb, redis: h.redis };
        if (!h.ok) {
          res.status(503).json(body);
          return;
        }
        return body;
      },
    }),
    route({
      method: 'get',
      path: '/metrics',
      tag: 'system',
      summary: 'Prometheus metrics',
      description: 'Needs a viewer token unless ACS_METRICS_PUBLIC=true.',
      access: s.config.metricsPublic ? 'public' : 'viewer',
      response: { status: 200, description: 'Prometheus text format', contentType: 'text/plain; version=0.0.4' },
      async handler({ res }) {
        const m = await s.metrics.render();
        res.status(200).type(m.contentType).send(m.body);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/openapi.json',
      tag: 'system',
      summary: 'This API\'s OpenAPI 3.1 document',
      access: 'viewer',
      response: { status: 200, description: 'the document', schema: z.record(z.string(), z.unknown()) },
      async handler() {
        return s.openapi;
      },
    }),
  ];
}
