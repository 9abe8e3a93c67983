// Operator accounts (admin) and "who am I" (anyone with a token).
import { z } from 'zod';
import { ROLES, type OperatorDoc } from '../operators';
import { notFound, route, type Route } from './route';
import type { ApiServices } from './services';
import { IdParam, Timestamp, iso, qBool } from './schemas';

const OperatorView = z.strictObject({
  id: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  tokenPrefix: z.string().describe('first characters of the token, to recognise it'),
  createdAt: Timestamp,
  createdBy: z.string(),
  lastUsedAt: Timestamp.optional(),
  revokedAt: Timestamp.optional(),
  revokedBy: z.string().optional(),
});

const view = (o: OperatorDoc): z.input<typeof OperatorView> => ({
  id: o._id,
  name: o.name,
  role: o.role,
  tokenPrefix: o.tokenPrefix,
  createdAt: iso(o.createdAt)!,
  createdBy: o.createdBy,
  ...(o.lastUsedAt ? { lastUsedAt: iso(o.lastUsedAt) } : {}),
  ...(o.revokedAt ? { revokedAt: iso(o.revokedAt) } : {}),
  ...(o.revokedBy ? { revokedBy: o.revokedBy } : {}),
});

export function operatorsRoutes(s: ApiServices): Route[] {
  return [
    route({
      method: 'get',
      path: '/api/v1/me',
      tag: 'operators',
      summary: 'Who the token belongs to',
      access: 'viewer',
      response: {
        status: 200,
        description: 'the caller',
        schema: z.strictObject({ id: z.string(), name: z.string(), role: z.enum(ROLES) }),
      },
      async handler({ operator }) {
        return { id: operator.id, name: operator.name, role: operator.role };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/operators',
      tag: 'operators',
      summary: 'List operator accounts',
      access: 'admin',
      query: z.strictObject({ includeRevoked: qBool.optional() }),
      response: { status: 200, description: 'accounts', schema: z.strictObject({ items: z.array(OperatorView) }) },
      async handler({ query }) {
        return { items: (await s.operators.list(query.includeRevoked ?? false)).map(view) };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/operators',
      tag: 'operators',
      summary: 'Create an account and its token',
      description: 'The token is in this answer only; it is stored hashed.',
      access: 'admin',
      body: z.strictObject({
        name: z.string().min(1).max(64).regex(/^[A-Za-z0-9_.@ -]+$/, 'letters, digits, space and _ . @ - only'),
        role: z.enum(ROLES),
      }),
      response: { status: 201, description: 'the account and its token', schema: z.strictObject({ operator: OperatorView, token: z.string() }) },
      auditTarget: (_ctx, result) => result?.operator.id,
      async handler({ body, operator }) {
        const { operator: created, token } = await s.operators.create(body.name, body.role, operator.name);
        return { operator: view(created), token };
      },
    }),
    route({
      method: 'delete',
      path: '/api/v1/operators/{id}',
      tag: 'operators',
      summary: 'Revoke an account\'s token',
      access: 'admin',
      params: z.strictObject({ id: IdParam('operator') }),
      response: { status: 200, description: 'the revoked account', schema: OperatorView },
      async handler({ params, operator }) {
        const o = await s.operators.revoke(params.id, operator.name);
        if (!o) throw notFound('operator', params.id);
        return view(o);
      },
    }),
  ];
}
