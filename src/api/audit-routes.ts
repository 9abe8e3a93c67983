// The audit log (admin): every mutating API call.
import { z } from 'zod';
import { ROLES } from '../operators';
import { route, type Route } from './route';
import type { ApiServices } from './services';
import { Page, Timestamp, iso, page, pageQuery, qDate, qText } from './schemas';

const AuditView = z.strictObject({
  id: z.string(),
  at: Timestamp,
  operator: z.strictObject({ id: z.string(), name: z.string(), role: z.enum(ROLES) }),
  action: z.string().describe('method and route, e.g. POST /api/v1/devices/{id}/tasks'),
  path: z.string(),
  params: z.record(z.string(), z.string()).optional(),
  body: z.unknown().optional().describe('the validated body, secrets redacted'),
  status: z.number().int(),
  target: z.string().optional(),
  error: z.string().optional(),
  remote: z.string(),
  userAgent: z.string().optional(),
});

export function auditRoutes(s: ApiServices): Route[] {
  return [
    route({
      method: 'get',
      path: '/api/v1/audit',
      tag: 'audit',
      summary: 'Read the audit log, newest first',
      access: 'admin',
      query: z.strictObject({
        operator: qText(64).optional().describe('operator id or name'),
        action: qText(200).optional().describe('e.g. "DELETE /api/v1/devices/{id}"'),
        target: qText(256).optional().describe('id of what was changed'),
        since: qDate.optional(),
        until: qDate.optional(),
        ...pageQuery,
      }),
      response: { status: 200, description: 'a page of records', schema: Page(AuditView) },
      async handler({ query }) {
        const p = page(query);
        const { total, items } = await s.audit.query({ ...p, operator: query.operator, action: query.action, target: query.target, since: query.since, until: query.until });
        return {
          total,
          ...p,
          items: items.map((a) => ({
            id: a._id,
            at: iso(a.at)!,
            operator: { id: a.operator.id, name: a.operator.name, role: a.operator.role },
            action: a.action,
            path: a.path,
            ...(a.params ? { params: a.params } : {}),
            ...(a.body !== undefined ? { body: a.body } : {}),
            status: a.status,
            ...(a.target ? { target: a.target } : {}),
            ...(a.error ? { error: a.error } : {}),
            remote: a.remote,
            ...(a.userAgent ? { userAgent: a.userAgent } : {}),
          })),
        };
      },
    }),
  ];
}
