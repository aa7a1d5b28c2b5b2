import type { FastifyInstance } from 'fastify';
import type { DpsAuthorizer } from '../../dps/auth/authorizer.js';
import type { Enrollments } from '../../dps/enrollments/enrollments.js';
import { ifMatch, sendJson } from './common.js';
import { dpsApiGroup, dpsGuard, header, sendPage } from './dpsCommon.js';

type Params = { registrationId: string };

/** Individual enrollments (`/enrollments`), as azure-iot-provisioning-service calls them. */
export function dpsEnrollmentsApi(enrollments: Enrollments, authorizer: DpsAuthorizer) {
  const auth = dpsGuard(authorizer);
  return dpsApiGroup((app: FastifyInstance) => {
    app.post('/enrollments', async (req, reply) => {
      await auth(req, 'EnrollmentWrite');
      return sendJson(reply, await enrollments.bulk(req.body));
    });

    app.post('/enrollments/query', async (req, reply) => {
      await auth(req, 'EnrollmentRead');
      const page = await enrollments.queryEnrollments(req.body, header(req, 'x-ms-max-item-count'), header(req, 'x-ms-continuation'));
      return sendPage(reply, 'Enrollment', page);
    });

    app.get<{ Params: Params }>('/enrollments/:registrationId', async (req, reply) => {
      await auth(req, 'EnrollmentRead');
      const e = await enrollments.getEnrollment(req.params.registrationId);
      return sendJson(reply, e, e.etag);
    });

    app.put<{ Params: Params }>('/enrollments/:registrationId', async (req, reply) => {
      await auth(req, 'EnrollmentWrite');
      const e = await enrollments.putEnrollment(req.params.registrationId, req.body, ifMatch(req));
      return sendJson(reply, e, e.etag);
    });

    app.delete<{ Params: Params }>('/enrollments/:registrationId', async (req, reply) => {
      await auth(req, 'EnrollmentWrite');
      await enrollments.deleteEnrollment(req.params.registrationId, ifMatch(req));
      return reply.code(204).send();
    });

    // The SDK POSTs; GET is accepted too.
    const attestation = async (req: { params: Params }) => enrollments.enrollmentAttestation(req.params.registrationId);
    for (const method of ['GET', 'POST'] as const) {
      app.route<{ Params: Params }>({
        method,
        url: '/enrollments/:registrationId/attestationmechanism',
        handler: async (req, reply) => {
          await auth(req, 'EnrollmentRead');
          return sendJson(reply, await attestation(req));
        },
      });
    }
  });
}
