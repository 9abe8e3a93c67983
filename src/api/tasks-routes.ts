// Tasks: push one thing to one device and follow it to the end; faults: the tasks that ended in
// a fault, fleet-wide or per device, to retry or clear.
import { z } from 'zod';
import { TASK_NAMES, TASK_STATUSES, TaskInput, type TaskName } from '../tasks';
import { notFound, route, type Route } from './route';
import type { ApiServices } from './services';
import { DeviceIdParam, IdParam, Page, TaskView, page, pageQuery, qBool, qInt, taskView } from './schemas';

const connectionRequestQuery = z.strictObject({
  connectionRequest: qBool.optional().describe('wake the device now with a connection request (default false)'),
});

export function tasksRoutes(s: ApiServices): Route[] {
  return [
    route({
      method: 'post',
      path: '/api/v1/devices/{id}/tasks',
      tag: 'tasks',
      summary: 'Push a task to a device',
      description:
        'Queued for the device\'s next session; with `connectionRequest=true` the device is woken now (the outcome is in `connectionRequest`). ' +
        'Status: queued → sent → done | fault | expired | cancelled. Reboot and FactoryReset are done when the device confirms (1 BOOT + M Reboot, 0 BOOTSTRAP), ' +
        'Download/Upload at TransferComplete (a firmware download then re-reads DeviceInfo.SoftwareVersion). ' +
        'Transient faults are retried with exponential back-off up to `maxRetries`.',
      access: 'operator',
      params: z.strictObject({ id: DeviceIdParam }),
      query: connectionRequestQuery,
      body: TaskInput,
      response: { status: 201, description: 'the task', schema: TaskView },
      errors: [409],
      async handler({ params, query, body, operator, res }) {
        const task = await s.tasks.create(params.id, body, { createdBy: operator.name, connectionRequest: query.connectionRequest });
        res.setHeader('Location', `/api/v1/tasks/${task._id}`);
        return taskView(task);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/tasks',
      tag: 'tasks',
      summary: 'List tasks, newest first',
      access: 'viewer',
      query: z.strictObject({
        device: DeviceIdParam.optional(),
        status: z.enum(TASK_STATUSES).optional(),
        name: z.enum(TASK_NAMES as [TaskName, ...TaskName[]]).optional(),
        campaign: IdParam('campaign').optional(),
        ...pageQuery,
      }),
      response: { status: 200, description: 'a page of tasks', schema: Page(TaskView) },
      async handler({ query }) {
        const p = page(query);
        const { total, items } = await s.tasks.query({ ...p, device: query.device, status: query.status, name: query.name, campaign: query.campaign });
        return { total, ...p, items: items.map(taskView) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/devices/{id}/tasks',
      tag: 'tasks',
      summary: 'Tasks of one device, newest first',
      access: 'viewer',
      params: z.strictObject({ id: DeviceIdParam }),
      query: z.strictObject({ status: z.enum(TASK_STATUSES).optional(), ...pageQuery }),
      response: { status: 200, description: 'a page of tasks', schema: Page(TaskView) },
      async handler({ params, query }) {
        if (!(await s.devices.exists(params.id))) throw notFound('device', params.id);
        const p = page(query);
        const { total, items } = await s.tasks.query({ ...p, device: params.id, status: query.status });
        return { total, ...p, items: items.map(taskView) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/tasks/{id}',
      tag: 'tasks',
      summary: 'One task: status, result, fault',
      access: 'viewer',
      params: z.strictObject({ id: IdParam('task') }),
      response: { status: 200, description: 'the task', schema: TaskView },
      async handler({ params }) {
        const t = await s.tasks.get(params.id);
        if (!t) throw notFound('task', params.id);
        return taskView(t);
      },
    }),
    route({
      method: 'delete',
      path: '/api/v1/tasks/{id}',
      tag: 'tasks',
      summary: 'Cancel a queued task',
      description: '409 when the task was already sent to the device or is finished.',
      access: 'operator',
      params: z.strictObject({ id: IdParam('task') }),
      response: { status: 200, description: 'the cancelled task', schema: TaskView },
      errors: [409],
      async handler({ params, operator }) {
        return taskView(await s.tasks.cancel(params.id, operator.name));
      },
    }),

    // ---- faults ----
    route({
      method: 'get',
      path: '/api/v1/faults',
      tag: 'faults',
      summary: 'Faults over the fleet, newest first',
      description: 'Tasks that ended in a fault (after their retries) and nobody cleared.',
      access: 'viewer',
      query: z.strictObject({
        device: DeviceIdParam.optional(),
        code: qInt(0, 99999).optional().describe('CWMP fault code'),
        name: z.enum(TASK_NAMES as [TaskName, ...TaskName[]]).optional(),
        campaign: IdParam('campaign').optional(),
        ...pageQuery,
      }),
      response: { status: 200, description: 'a page of faulted tasks', schema: Page(TaskView) },
      async handler({ query }) {
        const p = page(query);
        const { total, items } = await s.tasks.query({
          ...p,
          uncleared: true,
          device: query.device,
          faultCode: query.code,
          name: query.name,
          campaign: query.campaign,
        });
        return { total, ...p, items: items.map(taskView) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/devices/{id}/faults',
      tag: 'faults',
      summary: 'Faults of one device',
      access: 'viewer',
      params: z.strictObject({ id: DeviceIdParam }),
      query: z.strictObject({ ...pageQuery }),
      response: { status: 200, description: 'a page of faulted tasks', schema: Page(TaskView) },
      async handler({ params, query }) {
        if (!(await s.devices.exists(params.id))) throw notFound('device', params.id);
        const p = page(query);
        const { total, items } = await s.tasks.query({ ...p, uncleared: true, device: params.id });
        return { total, ...p, items: items.map(taskView) };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/faults/{id}/retry',
      tag: 'faults',
      summary: 'Retry a faulted task now',
      description: 'Queues the same request again with a fresh retry budget and expiry.',
      access: 'operator',
      params: z.strictObject({ id: IdParam('task') }),
      query: connectionRequestQuery,
      response: { status: 200, description: 'the task, queued again', schema: TaskView },
      errors: [409],
      async handler({ params, query, operator }) {
        return taskView(await s.tasks.retry(params.id, operator.name, query.connectionRequest ?? false));
      },
    }),
    route({
      method: 'delete',
      path: '/api/v1/faults/{id}',
      tag: 'faults',
      summary: 'Clear a fault',
      description: 'The task stays in status fault but leaves the fault lists.',
      access: 'operator',
      params: z.strictObject({ id: IdParam('task') }),
      response: { status: 200, description: 'the cleared task', schema: TaskView },
      errors: [409],
      async handler({ params, operator }) {
        return taskView(await s.tasks.clear(params.id, operator.name));
      },
    }),
  ];
}
