import type { FastifyInstance } from 'fastify';
import type { DpsAuthorizer } from '../../dps/auth/authorizer.js';
import type { Enrollments } from '../../dps/enrollments/enrollments.js';
import { ifMatch, sendJson } from './common.js';
import { dpsApiGroup, dpsGuard, header, sendPage } from './dpsCommon.js';

type Params = { enrollmentGroupId: string };

/** Enrollment groups (`/enrollmentGroups`), as azure-iot-provisioning-service calls them. */
export function dpsEnrollmentGroupsApi(enrollments: Enrollments, authorizer: DpsAuthorizer) {
  const auth = dpsGuard(authorizer);
  return dpsApiGroup((app: FastifyInstance) => {
    app.post('/enrollmentGroups/query', async (req, reply) => {
      await auth(req, 'EnrollmentRead');
      const page = await enrollments.queryGroups(req.body, header(req, 'x-ms-max-item-count'), header(req, 'x-ms-continuation'));
      return sendPage(reply, 'EnrollmentGroup', page);
    });

    app.get<{ Params: Params }>('/enrollmentGroups/:enrollmentGroupId', async (req, reply) => {
      await auth(req, 'EnrollmentRead');
      const g = await enrollments.getGroup(req.params.enrollmentGroupId);
      return sendJson(reply, g, g.etag);
    });

    app.put<{ Params: Params }>('/enrollmentGroups/:enrollmentGroupId', async (req, reply) => {
      await auth(req, 'EnrollmentWrite');
      const g = await enrollments.putGroup(req.params.enrollmentGroupId, req.body, ifMatch(req));
      return sendJson(reply, g, g.etag);
    });

    app.delete<{ Params: Params }>('/enrollmentGroups/:enrollmentGroupId', async (req, reply) => {
      await auth(req, 'EnrollmentWrite');
      await enrollments.deleteGroup(req.params.enrollmentGroupId, ifMatch(req));
      return reply.code(204).send();
    });

    // The SDK writes this path in lower case (`/enrollmentgroups/…`) and POSTs.
    for (const url of ['/enrollmentGroups/:enrollmentGroupId/attestationmechanism', '/enrollmentgroups/:enrollmentGroupId/attestationmechanism']) {
      app.route<{ Params: Params }>({
        method: ['GET', 'POST'],
        url,
        handler: async (req, reply) => {
          await auth(req, 'EnrollmentRead');
          return sendJson(reply, await enrollments.groupAttestation(req.params.enrollmentGroupId));
        },
      });
    }
  });
}
