import type { FastifyInstance } from 'fastify';
import type { Authorizer } from '../../hub/auth/authorizer.js';
import type { Jobs } from '../../hub/jobs/jobs.js';
import { sendJson } from './common.js';
import { guard } from './common.js';
import { continuation, pageSize, sendPage } from './query.js';

type JobParams = { jobId: string };

/** Jobs (`/jobs/v2/...`), as azure-iothub's JobClient calls them. */
export function jobsApi(jobs: Jobs, authorizer: Authorizer) {
  const auth = guard(authorizer);
  return async (app: FastifyInstance) => {
    app.get('/jobs/v2/query', async (req, reply) => {
      await auth(req, ['RegistryRead', 'ServiceConnect']);
      const q = req.query as Record<string, string | undefined>;
      return sendPage(reply, await jobs.list(q.jobType || undefined, q.jobStatus || undefined, pageSize(req), continuation(req)));
    });
    app.put<{ Params: JobParams }>('/jobs/v2/:jobId', async (req, reply) => {
      await auth(req, ['ServiceConnect', 'RegistryWrite']);
      return sendJson(reply, await jobs.schedule(req.params.jobId, req.body));
    });
    app.get<{ Params: JobParams }>('/jobs/v2/:jobId', async (req, reply) => {
      await auth(req, ['RegistryRead', 'ServiceConnect']);
      return sendJson(reply, await jobs.get(req.params.jobId));
    });
    app.post<{ Params: JobParams }>('/jobs/v2/:jobId/cancel', async (req, reply) => {
      await auth(req, ['ServiceConnect', 'RegistryWrite']);
      return sendJson(reply, await jobs.cancel(req.params.jobId));
    });
  };
}
