import type { FastifyInstance } from 'fastify';
import type { Authorizer } from '../../hub/auth/authorizer.js';
import type { BulkJobs } from '../../hub/importExport/bulkJobs.js';
import { guard, sendJson } from './common.js';

type JobParams = { jobId: string };

/** Bulk import/export of the identity registry (`/jobs/create`, `/jobs/{id}`): not the device jobs of `/jobs/v2`. */
export function bulkJobsApi(jobs: BulkJobs, authorizer: Authorizer) {
  const auth = guard(authorizer);
  return async (app: FastifyInstance) => {
    app.post('/jobs/create', async (req, reply) => {
      await auth(req, 'RegistryWrite');
      return sendJson(reply, await jobs.create(req.body));
    });
    app.get('/jobs', async (req, reply) => {
      await auth(req, 'RegistryRead');
      return sendJson(reply, await jobs.list());
    });
    app.get<{ Params: JobParams }>('/jobs/:jobId', async (req, reply) => {
      await auth(req, 'RegistryRead');
      return sendJson(reply, await jobs.get(req.params.jobId));
    });
    app.delete<{ Params: JobParams }>('/jobs/:jobId', async (req, reply) => {
      await auth(req, 'RegistryWrite');
      return sendJson(reply, await jobs.cancel(req.params.jobId));
    });
  };
}
