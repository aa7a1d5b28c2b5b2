import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../../identity/types.js';
import type { LocalTokenService } from '../../identity/tokens.js';
import { resourceOfScope } from '../../identity/tokens.js';

export interface AadEndpointDeps {
  tokens: LocalTokenService;
  /** The principal a client id + secret signs in as (the administrator), or why not. */
  signIn(clientId: string, clientSecret: string): Promise<Principal | 'unknownClient' | 'badSecret'>;
  /** A hub's managed-identity endpoint: its secret header and the identity a query selects. */
  managedIdentity(hubName: string): Promise<
    | {
        header: string;
        select(by: { clientId?: string; resourceId?: string; objectId?: string }): Promise<Principal | undefined>;
      }
    | undefined
  >;
}

/**
 * Fleethub's Azure AD endpoints, per tenant (`{tenantId}`, `common` or `organizations`): OpenID
 * discovery (v1 and v2.0), the JWKS, the token endpoint (client credentials with a client secret,
 * v1 `resource` and v2.0 `scope` forms), and the managed-identity endpoint of each hub in App
 * Service's protocol (`/msi/{hub}/token`, loopback callers only). Errors in Azure AD's shape.
 */
export function aadApi(deps: AadEndpointDeps) {
  return async (app: FastifyInstance) => {
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    const tid = deps.tokens.tenantId;
    const base = (req: FastifyRequest) => `https://${req.headers.host ?? req.hostname}`;
    const tenantOf = (req: FastifyRequest, reply: FastifyReply): string | undefined => {
      const t = (req.params as { tenant: string }).tenant.toLowerCase();
      if (t === tid || t === 'common' || t === 'organizations') return tid;
      void aadError(reply, 400, 'invalid_tenant', 90002, `Tenant '${t}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
      return undefined;
    };

    app.get('/:tenant/v2.0/.well-known/openid-configuration', async (req, reply) => {
      const t = tenantOf(req, reply);
      if (!t) return reply;
      const b = `${base(req)}/${t}`;
      return {
        token_endpoint: `${b}/oauth2/v2.0/token`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
        jwks_uri: `${b}/discovery/v2.0/keys`,
        response_modes_supported: ['query', 'fragment', 'form_post'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        issuer: `${b}/v2.0`,
        request_uri_parameter_supported: false,
        authorization_endpoint: `${b}/oauth2/v2.0/authorize`,
        device_authorization_endpoint: `${b}/oauth2/v2.0/devicecode`,
        end_session_endpoint: `${b}/oauth2/v2.0/logout`,
        tenant_region_scope: null,
        cloud_instance_name: 'fleethub.local',
        cloud_graph_host_name: 'fleethub.local',
        msgraph_host: 'fleethub.local',
      };
    });
    app.get('/:tenant/.well-known/openid-configuration', async (req, reply) => {
      const t = tenantOf(req, reply);
      if (!t) return reply;
      const b = `${base(req)}/${t}`;
      return {
        token_endpoint: `${b}/oauth2/token`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
        jwks_uri: `${base(req)}/common/discovery/keys`,
        response_modes_supported: ['query', 'fragment', 'form_post'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'token id_token', 'token'],
        scopes_supported: ['openid'],
        issuer: deps.tokens.issuer,
        authorization_endpoint: `${b}/oauth2/authorize`,
        end_session_endpoint: `${b}/oauth2/logout`,
        tenant_region_scope: null,
        cloud_instance_name: 'fleethub.local',
      };
    });
    for (const path of ['/:tenant/discovery/v2.0/keys', '/:tenant/discovery/keys']) {
      app.get(path, async (req, reply) => (tenantOf(req, reply) ? deps.tokens.jwks() : reply));
    }

    const token = (v2: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
      if (!tenantOf(req, reply)) return reply;
      const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, string | undefined>;
      if (body.grant_type !== 'client_credentials') {
        return aadError(reply, 400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${body.grant_type ?? ''}'. Fleethub supports client_credentials.`);
      }
      let clientId = body.client_id;
      let secret = body.client_secret;
      const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (basic) {
        const [id, s] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
        clientId = clientId ?? decodeURIComponent(id ?? '');
        secret = secret ?? decodeURIComponent(s ?? '');
      }
      if (!clientId) return aadError(reply, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
      const resource = v2 ? scopeResource(body.scope) : body.resource;
      if (!resource) {
        return v2
          ? aadError(reply, 400, 'invalid_scope', 1002012, `The provided value for scope ${body.scope ?? ''} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`)
          : aadError(reply, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'resource'.");
      }
      if (!secret) return aadError(reply, 401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
      const principal = await deps.signIn(clientId, secret);
      if (principal === 'unknownClient') {
        return aadError(reply, 400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tid}'.`);
      }
      if (principal === 'badSecret') {
        return aadError(reply, 401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`);
      }
      const issued = await deps.tokens.issue(principal, resource);
      const expiresIn = Math.max(0, Math.floor((issued.expiresOnTimestamp - Date.now()) / 1000));
      reply.header('cache-control', 'no-store, no-cache').header('pragma', 'no-cache');
      if (v2) return { token_type: 'Bearer', expires_in: expiresIn, ext_expires_in: expiresIn, access_token: issued.token };
      const now = Math.floor(Date.now() / 1000);
      return {
        token_type: 'Bearer',
        expires_in: String(expiresIn),
        ext_expires_in: String(expiresIn),
        expires_on: String(Math.floor(issued.expiresOnTimestamp / 1000)),
        not_before: String(now),
        resource,
        access_token: issued.token,
      };
    };
    app.post('/:tenant/oauth2/v2.0/token', token(true));
    app.post('/:tenant/oauth2/token', token(false));

    // Managed identities, in App Service's protocol (IDENTITY_ENDPOINT / IDENTITY_HEADER, api-version 2019-08-01).
    app.get('/msi/:hubName/token', async (req, reply) => {
      const fail = (status: number, message: string) => reply.code(status).send({ statusCode: status, message, correlationId: randomUUID() });
      if (!isLoopback(req.socket.remoteAddress)) return fail(403, 'The managed identity endpoint answers only callers on this machine.');
      const q = req.query as Record<string, string | undefined>;
      const endpoint = await deps.managedIdentity((req.params as { hubName: string }).hubName);
      const given = req.headers['x-identity-header'];
      if (!endpoint || typeof given !== 'string' || !safeEqual(given, endpoint.header)) {
        return fail(401, 'The X-IDENTITY-HEADER header is missing or does not match this endpoint.');
      }
      if (q['api-version'] !== '2019-08-01') return fail(400, `The api-version '${q['api-version'] ?? ''}' is not supported; use 2019-08-01.`);
      if (!q.resource) return fail(400, "The 'resource' query parameter is required.");
      const principal = await endpoint.select({
        clientId: q.client_id ?? q.clientid,
        resourceId: q.mi_res_id ?? q.msi_res_id,
        objectId: q.object_id ?? q.principal_id,
      });
      if (!principal) return fail(400, 'Unable to load the proper Managed Identity.');
      const resource = resourceOfScope(q.resource);
      const issued = await deps.tokens.issue(principal, resource);
      return {
        access_token: issued.token,
        expires_on: String(Math.floor(issued.expiresOnTimestamp / 1000)),
        resource,
        token_type: 'Bearer',
        client_id: principal.clientId,
      };
    });
  };
}

/** The resource of a v2.0 client-credentials scope (`{resource}/.default`); anything else is refused. */
function scopeResource(scope: string | undefined): string | undefined {
  const scopes = (scope ?? '').split(' ').filter((s) => s && !['openid', 'profile', 'offline_access'].includes(s));
  if (scopes.length !== 1 || !/\/\.default$/i.test(scopes[0]!)) return undefined;
  return resourceOfScope(scopes[0]!);
}

function aadError(reply: FastifyReply, status: number, error: string, code: number, description: string) {
  const now = new Date();
  const traceId = randomUUID();
  const correlationId = randomUUID();
  return reply.code(status).send({
    error,
    error_description: `AADSTS${code}: ${description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${now.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')}`,
    error_codes: [code],
    timestamp: now.toISOString().replace(/\.\d+Z$/, 'Z'),
    trace_id: traceId,
    correlation_id: correlationId,
  });
}

function isLoopback(address: string | undefined): boolean {
  return !!address && (/^127\./.test(address) || address === '::1' || /^::ffff:127\./.test(address));
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
