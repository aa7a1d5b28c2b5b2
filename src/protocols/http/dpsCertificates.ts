import type { FastifyInstance } from 'fastify';
import type { DpsAuthorizer } from '../../dps/auth/authorizer.js';
import type { DpsCertificates } from '../../dps/certificates/certificates.js';
import { ifMatch, sendJson } from './common.js';
import { dpsApiGroup, dpsGuard } from './dpsCommon.js';

type Params = { name: string };

/**
 * Fleethub's admin API for the DPS's CA certificates. Azure manages these through ARM
 * (`az iot dps certificate`); the shapes follow ARM's CertificateResponse, the auth is the
 * DPS's own SAS with ServiceConfig.
 */
export function dpsCertificatesApi(certificates: DpsCertificates, authorizer: DpsAuthorizer) {
  const auth = dpsGuard(authorizer);
  const base = '/fleethub/dps/certificates';
  return dpsApiGroup((app: FastifyInstance) => {
    app.get(base, async (req, reply) => {
      await auth(req, 'ServiceConfig');
      return sendJson(reply, { value: await certificates.list() });
    });

    app.get<{ Params: Params }>(`${base}/:name`, async (req, reply) => {
      await auth(req, 'ServiceConfig');
      const c = await certificates.get(req.params.name);
      return sendJson(reply, c, c.etag);
    });

    app.put<{ Params: Params }>(`${base}/:name`, async (req, reply) => {
      await auth(req, 'ServiceConfig');
      const c = await certificates.put(req.params.name, req.body, ifMatch(req));
      return sendJson(reply, c, c.etag);
    });

    app.post<{ Params: Params }>(`${base}/:name/generateVerificationCode`, async (req, reply) => {
      await auth(req, 'ServiceConfig');
      const c = await certificates.generateVerificationCode(req.params.name, ifMatch(req));
      return sendJson(reply, c, c.etag);
    });

    app.post<{ Params: Params }>(`${base}/:name/verify`, async (req, reply) => {
      await auth(req, 'ServiceConfig');
      const c = await certificates.verify(req.params.name, req.body, ifMatch(req));
      return sendJson(reply, c, c.etag);
    });

    app.delete<{ Params: Params }>(`${base}/:name`, async (req, reply) => {
      await auth(req, 'ServiceConfig');
      await certificates.delete(req.params.name, ifMatch(req));
      return reply.code(204).send();
    });
  });
}
