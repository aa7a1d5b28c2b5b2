/**
 * The administrator's managed-identity endpoint in App Service's older protocol (MSI_ENDPOINT /
 * MSI_SECRET, api-version 2017-09-01, header `secret`), which `az login --identity` (azure-cli 2.45,
 * with APPSETTING_WEBSITE_SITE_NAME set) signs in through. It signs in as the administrator service
 * principal (Owner of the subscription), so only callers on this machine that know the secret get
 * a token: the secret is derived from the administrator's client secret (the data directory is the
 * trust boundary, as for the client secret itself) and printed by `fleethub info --json`.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Principals, Tenancy, TokenService } from '../../../identity/types.js';

export const ADMINISTRATOR_MSI_PATH = '/msi-administrator/token';

/** MSI_SECRET of the administrator's endpoint. */
export function administratorMsiSecret(administratorClientSecret: string): string {
  return createHmac('sha256', administratorClientSecret).update('fleethub administrator MSI_SECRET (api-version 2017-09-01)').digest('base64url');
}

/** What `fleethub info --json` prints under management: MSI_ENDPOINT and MSI_SECRET for `az login --identity`. */
export function administratorMsiInfo(baseUrl: string, administratorClientSecret: string) {
  return { msiEndpoint: `${baseUrl.replace(/\/+$/, '')}${ADMINISTRATOR_MSI_PATH}`, msiSecret: administratorMsiSecret(administratorClientSecret) };
}

export function administratorMsi(deps: { tenancy: Tenancy; principals: Principals; tokens: TokenService }) {
  const secret = administratorMsiSecret(deps.tenancy.administrator.clientSecret);
  return async function plugin(app: FastifyInstance) {
    const handler = async (req: FastifyRequest, reply: FastifyReply) => {
      const fail = (status: number, message: string) => reply.code(status).send({ statusCode: status, message, correlationId: randomUUID() });
      const a = req.socket.remoteAddress ?? '';
      if (!(/^127\./.test(a) || a === '::1' || /^::ffff:127\./.test(a))) return fail(403, 'The managed identity endpoint answers only callers on this machine.');
      const given = req.headers.secret;
      if (typeof given !== 'string' || given.length !== secret.length || !timingSafeEqual(Buffer.from(given), Buffer.from(secret))) {
        return fail(401, "The 'secret' header is missing or does not match MSI_SECRET.");
      }
      const q = req.query as Record<string, string | undefined>;
      if (q['api-version'] !== '2017-09-01') return fail(400, `The api-version '${q['api-version'] ?? ''}' is not supported here; use 2017-09-01.`);
      if (!q.resource) return fail(400, "The 'resource' query parameter is required.");
      if (q.clientid && q.clientid.toLowerCase() !== deps.tenancy.administrator.clientId.toLowerCase()) return fail(400, 'Unable to load the proper Managed Identity.');
      const principal = await deps.principals.get(deps.tenancy.administrator.principalId);
      if (!principal) return fail(500, 'The administrator principal is missing.');
      const resource = q.resource.replace(/\/\.default$/, '');
      const issued = await deps.tokens.issue(principal, resource);
      return {
        access_token: issued.token,
        expires_on: String(Math.floor(issued.expiresOnTimestamp / 1000)),
        resource,
        token_type: 'Bearer',
        client_id: principal.clientId,
      };
    };
    app.get(ADMINISTRATOR_MSI_PATH, handler);
  };
}
