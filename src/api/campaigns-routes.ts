// Campaigns: the same task for every device matching a filter, at a limited rate, with progress.
import { z } from 'zod';
import { CAMPAIGN_STATUSES, type CampaignDoc } from '../campaigns';
import { TASK_STATUSES, TaskInput } from '../tasks';
import { DeviceFilterBody, deviceFilter } from './devices-routes';
import { notFound, route, type Route } from './route';
import type { ApiServices } from './services';
import { IdParam, Page, TaskView, Timestamp, iso, page, pageQuery, taskView } from './schemas';

const FilterView = z.strictObject({
  id: z.string().optional(),
  idPrefix: z.string().optional(),
  oui: z.string().optional(),
  productClass: z.string().optional(),
  softwareVersion: z.string().optional(),
  tag: z.string().optional(),
  lastInformBefore: Timestamp.optional(),
  lastInformAfter: Timestamp.optional(),
  online: z.boolean().optional(),
});

const CampaignView = z.strictObject({
  id: z.string(),
  name: z.string(),
  status: z.enum(CAMPAIGN_STATUSES),
  filter: FilterView,
  task: TaskInput,
  connectionRequest: z.boolean(),
  ratePerMinute: z.number(),
  createdAt: Timestamp,
  createdBy: z.string(),
  finishedAt: Timestamp.optional(),
  progress: z
    .strictObject({
      matched: z.number().int().describe('devices matching when the campaign was created'),
      dispatched: z.number().int().describe('tasks created so far'),
      tasks: z.strictObject(Object.fromEntries(TASK_STATUSES.map((st) => [st, z.number().int()])) as Record<(typeof TASK_STATUSES)[number], z.ZodNumber>),
    })
    .describe('tasks created and where they are'),
});

const CampaignBody = z.strictObject({
  name: z.string().min(1).max(128).optional(),
  filter: DeviceFilterBody.describe('which devices; at least one criterion'),
  task: TaskInput,
  ratePerMinute: z.number().int().min(1).max(100_000).describe('most tasks created per minute'),
  connectionRequest: z.boolean().optional().describe('wake each device as its task is created'),
});

export function campaignsRoutes(s: ApiServices): Route[] {
  const view = async (c: CampaignDoc): Promise<z.input<typeof CampaignView>> => {
    const { lastInformBefore, lastInformAfter, ...f } = c.filter;
    return {
      id: c._id,
      name: c.name,
      status: c.status,
      filter: {
        ...f,
        ...(lastInformBefore ? { lastInformBefore: iso(lastInformBefore) } : {}),
        ...(lastInformAfter ? { lastInformAfter: iso(lastInformAfter) } : {}),
      },
      task: c.task.name === 'download' && c.task.password !== undefined ? { ...c.task, password: '[redacted]' } : c.task,
      connectionRequest: c.connectionRequest,
      ratePerMinute: c.ratePerMinute,
      createdAt: iso(c.createdAt)!,
      createdBy: c.createdBy,
      ...(c.finishedAt ? { finishedAt: iso(c.finishedAt) } : {}),
      progress: await s.campaigns.progress(c),
    };
  };
  const Id = z.strictObject({ id: IdParam('campaign') });

  return [
    route({
      method: 'post',
      path: '/api/v1/campaigns',
      tag: 'campaigns',
      summary: 'Push a task to every device matching a filter',
      description: 'Tasks are created in device id order at most `ratePerMinute` per minute; progress counts them by status.',
      access: 'operator',
      body: CampaignBody,
      response: { status: 201, description: 'the campaign', schema: CampaignView },
      async handler({ body, operator, res }) {
        const c = await s.campaigns.create({
          name: body.name,
          filter: deviceFilter(body.filter),
          task: body.task,
          ratePerMinute: body.ratePerMinute,
          connectionRequest: body.connectionRequest,
          createdBy: operator.name,
        });
        res.setHeader('Location', `/api/v1/campaigns/${c._id}`);
        return view(c);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/campaigns',
      tag: 'campaigns',
      summary: 'List campaigns, newest first',
      access: 'viewer',
      query: z.strictObject({ status: z.enum(CAMPAIGN_STATUSES).optional(), ...pageQuery }),
      response: { status: 200, description: 'a page of campaigns', schema: Page(CampaignView) },
      async handler({ query }) {
        const p = page(query);
        const { total, items } = await s.campaigns.list({ ...p, status: query.status });
        return { total, ...p, items: await Promise.all(items.map(view)) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/campaigns/{id}',
      tag: 'campaigns',
      summary: 'One campaign with its progress',
      access: 'viewer',
      params: Id,
      response: { status: 200, description: 'the campaign', schema: CampaignView },
      async handler({ params }) {
        const c = await s.campaigns.get(params.id);
        if (!c) throw notFound('campaign', params.id);
        return view(c);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/campaigns/{id}/tasks',
      tag: 'campaigns',
      summary: 'The campaign\'s tasks',
      access: 'viewer',
      params: Id,
      query: z.strictObject({ status: z.enum(TASK_STATUSES).optional(), ...pageQuery }),
      response: { status: 200, description: 'a page of tasks', schema: Page(TaskView) },
      async handler({ params, query }) {
        if (!(await s.campaigns.get(params.id))) throw notFound('campaign', params.id);
        const p = page(query);
        const { total, items } = await s.tasks.query({ ...p, campaign: params.id, status: query.status });
        return { total, ...p, items: items.map(taskView) };
      },
    }),
    ...(['pause', 'resume', 'cancel'] as const).map((action) =>
      route({
        method: 'post',
        path: `/api/v1/campaigns/{id}/${action}`,
        tag: 'campaigns',
        summary: { pause: 'Pause: no more tasks are created', resume: 'Resume a paused campaign', cancel: 'Cancel: stop and cancel its queued tasks' }[action],
        access: 'operator',
        params: Id,
        response: { status: 200, description: 'the campaign', schema: CampaignView },
        errors: [409],
        async handler({ params, operator }) {
          const c =
            action === 'pause'
              ? await s.campaigns.pause(params.id)
              : action === 'resume'
                ? await s.campaigns.resume(params.id)
                : await s.campaigns.cancel(params.id, operator.name);
          return view(c);
        },
      }),
    ),
  ];
}
