import type { FastifyInstance } from 'fastify';
import type { DpsAuthorizer } from '../../dps/auth/authorizer.js';
import type { RegistrationStates } from '../../dps/registrations/registrations.js';
import { ifMatch, sendJson } from './common.js';
import { dpsApiGroup, dpsGuard, header, sendPage } from './dpsCommon.js';

/** Device registration states (`/registrations`). */
export function dpsRegistrationsApi(registrations: RegistrationStates, authorizer: DpsAuthorizer) {
  const auth = dpsGuard(authorizer);
  return dpsApiGroup((app: FastifyInstance) => {
    app.get<{ Params: { registrationId: string } }>('/registrations/:registrationId', async (req, reply) => {
      await auth(req, 'RegistrationStatusRead');
      const r = await registrations.get(req.params.registrationId);
      return sendJson(reply, r, r.etag);
    });

    app.delete<{ Params: { registrationId: string } }>('/registrations/:registrationId', async (req, reply) => {
      await auth(req, 'RegistrationStatusWrite');
      await registrations.delete(req.params.registrationId, ifMatch(req));
      return reply.code(204).send();
    });

    app.post<{ Params: { enrollmentGroupId: string } }>('/registrations/:enrollmentGroupId/query', async (req, reply) => {
      await auth(req, 'RegistrationStatusRead');
      const page = await registrations.queryForGroup(
        req.params.enrollmentGroupId,
        req.body,
        header(req, 'x-ms-max-item-count'),
        header(req, 'x-ms-continuation'),
      );
      return sendPage(reply, 'DeviceRegistration', page);
    });
  });
}
