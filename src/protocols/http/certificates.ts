import type { FastifyInstance } from 'fastify';
import type { Authorizer } from '../../hub/auth/authorizer.js';
import type { HubCertificates } from '../../hub/certificates/certificates.js';
import { guard, ifMatch, sendJson } from './common.js';

type Params = { name: string };

/**
 * Fleethub's admin API for hub CA certificates (Azure manages them through ARM, which Fleethub
 * does not have): the operations of `az iot hub certificate`, authorized like service calls.
 */
export function certificatesApi(certificates: HubCertificates, authorizer: Authorizer) {
  const auth = guard(authorizer);
  const pem = (body: unknown) => (body as { certificate?: unknown } | undefined)?.certificate;
  return async (app: FastifyInstance) => {
    app.get('/fleethub/certificates', async (req, reply) => {
      await auth(req, 'RegistryRead');
      return sendJson(reply, { value: await certificates.list() });
    });
    app.get<{ Params: Params }>('/fleethub/certificates/:name', async (req, reply) => {
      await auth(req, 'RegistryRead');
      const c = await certificates.get(req.params.name);
      return sendJson(reply, c, c.etag);
    });
    app.put<{ Params: Params }>('/fleethub/certificates/:name', async (req, reply) => {
      await auth(req, 'RegistryWrite');
      const c = await certificates.put(req.params.name, pem(req.body), ifMatch(req));
      return sendJson(reply, c, c.etag);
    });
    app.delete<{ Params: Params }>('/fleethub/certificates/:name', async (req, reply) => {
      await auth(req, 'RegistryWrite');
      await certificates.delete(req.params.name, ifMatch(req));
      return reply.code(204).send();
    });
    app.post<{ Params: Params }>('/fleethub/certificates/:name/generateVerificationCode', async (req, reply) => {
      await auth(req, 'RegistryWrite');
      const c = await certificates.generateVerificationCode(req.params.name, ifMatch(req));
      return sendJson(reply, c, c.etag);
    });
    app.post<{ Params: Params }>('/fleethub/certificates/:name/verify', async (req, reply) => {
      await auth(req, 'RegistryWrite');
      const c = await certificates.verify(req.params.name, pem(req.body), ifMatch(req));
      return sendJson(reply, c, c.etag);
    });
  };
}
