/**
 * Azure Resource Manager's REST surface, on the primary hub's HTTPS listener: path families
 * `/subscriptions…`, `/providers…`, `/tenants`, `/metadata/endpoints`. A thin adapter: it parses
 * ARM paths, authenticates the bearer token, and calls the control plane; errors as ARM writes them.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UnauthenticatedError, type Principal, type TokenService } from '../../../identity/types.js';
import { ArmError, armErrors } from '../../../control/errors.js';
import { IdentityError } from '../../../identity/errors.js';
import type { ControlPlane } from '../../../control/plane.js';
import type { ResourceId } from '../../../control/resourceIds.js';
import JSON5 from 'json5';

/** The audiences a management token may carry (with or without a trailing slash). */
export const MANAGEMENT_AUDIENCES = ['https://management.azure.com/', 'https://management.core.windows.net/'];
const ARM_BODY_LIMIT = 4 * 1024 * 1024;

interface Call {
  method: string;
  seg: string[];
  query: Record<string, string>;
  body: unknown;
  caller: Principal;
  apiVersion: string;
  base: string;
  headers: FastifyRequest['headers'];
}
interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}
export type { Call as ArmCall, Answer as ArmAnswer };

/**
 * More routes (deployments), tried before the resource routes: an answer, or undefined when the
 * path is not theirs. `arm` is this API's own dispatch (for applying resources as the same caller).
 * `lenientBody(url)`: bodies of that URL may be JSON5 when they are not JSON.
 */
export interface ArmRoutes {
  route: (c: Call, arm: (c: Call) => Promise<Answer>) => Promise<Answer | undefined>;
  lenientBody?: (url: string) => boolean;
}
export type ArmRoute = ArmRoutes['route'];

export function armApi(plane: ControlPlane, tokens: TokenService, extra: ArmRoutes[] = []) {
  /** Long-running operations finished by the time they are accepted: their result by id. */
  const operations = new Map<string, number>();
  const all = async (c: Call): Promise<Answer> => {
    for (const r of extra) {
      const answer = await r.route(c, all);
      if (answer) return answer;
    }
    return dispatch(plane, operations, c);
  };

  return async function arm(app: FastifyInstance) {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: ARM_BODY_LIMIT }, (req, body, done) => {
      if (body === '') return done(null, undefined);
      try {
        done(null, JSON.parse(body as string));
      } catch (e) {
        if (extra.some((r) => r.lenientBody?.(req.url))) {
          try {
            return done(null, JSON5.parse(body as string));
          } catch {
            /* the JSON error below */
          }
        }
        done(new ArmError(400, 'InvalidRequestContent', `The request content was invalid and could not be deserialized: '${(e as Error).message}'.`), undefined);
      }
    });
    app.setErrorHandler((error, request, reply) => {
      const e = error instanceof ArmError ? error : error instanceof IdentityError ? new ArmError(error.status, error.code, error.message) : (error as { statusCode?: number }).statusCode === 413
        ? new ArmError(413, 'RequestEntityTooLarge', 'The request content is too large.')
        : new ArmError(500, 'InternalServerError', 'The server encountered an internal error.');
      if (e.status >= 500) request.log.error({ err: error }, 'ARM request failed');
      return sendError(reply, e);
    });

    app.get('/metadata/endpoints', async (request, reply) => {
      const base = baseUrl(request);
      const cloud = metadata(base);
      const v = (request.query as Record<string, string>)['api-version'] ?? '';
      return reply.send(v >= '2022-09-01' ? [cloud] : cloud);
    });

    const handler = async (request: FastifyRequest, reply: FastifyReply) => {
      const url = request.url;
      const [rawPath, rawQuery = ''] = url.split('?', 2) as [string, string?];
      const seg = rawPath.split('/').filter((x) => x !== '').map((x) => {
        try {
          return decodeURIComponent(x);
        } catch {
          throw armErrors.badRequest('InvalidRequestUri', `The request URI '${rawPath}' is not valid.`);
        }
      });
      const query = Object.fromEntries(new URLSearchParams(rawQuery));
      reply.header('x-ms-request-id', randomUUID());
      reply.header('x-ms-correlation-request-id', (request.headers['x-ms-correlation-request-id'] as string) ?? randomUUID());
      const caller = await authenticate(request, tokens, baseUrl(request));
      const apiVersion = query['api-version'];
      if (!apiVersion) throw armErrors.badRequest('MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests.");
      const answer = await all({
        method: request.method,
        seg,
        query,
        body: request.body,
        caller,
        apiVersion,
        base: baseUrl(request),
        headers: request.headers,
      });
      if (answer.headers) for (const [k, v] of Object.entries(answer.headers)) reply.header(k, v);
      reply.code(answer.status);
      return answer.body === undefined ? reply.send() : reply.send(answer.body);
    };
    for (const url of ['/subscriptions', '/subscriptions/*', '/providers', '/providers/*', '/tenants']) {
      app.route({ method: ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE', 'POST'], url, handler, exposeHeadRoute: false });
    }
  };
}

function sendError(reply: FastifyReply, e: ArmError) {
  if (e.status === 401) {
    reply.header('www-authenticate', `Bearer authorization_uri="${''}", error="invalid_token", error_description="${e.message.replace(/"/g, "'")}"`);
  }
  reply.header('x-ms-failure-cause', 'gateway');
  return reply.code(e.status).type('application/json; charset=utf-8').send({ error: { code: e.code, message: e.message } });
}

/**
 * The bearer token's audience is Azure's management audiences, or the endpoint itself (what the ARM
 * SDKs ask for when given an `endpoint` and no `credentialScopes`: `{endpoint}/.default`).
 */
async function authenticate(request: FastifyRequest, tokens: TokenService, endpoint: string): Promise<Principal> {
  const header = request.headers.authorization;
  if (!header) throw new ArmError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.");
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  if (!m) throw new ArmError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is provided in an invalid format.");
  try {
    return (await tokens.verify(m[1]!, [...MANAGEMENT_AUDIENCES, endpoint])).principal;
  } catch (e) {
    if (e instanceof UnauthenticatedError) throw new ArmError(401, 'InvalidAuthenticationToken', `The access token is invalid. ${e.message}`);
    throw e;
  }
}

function baseUrl(request: FastifyRequest): string {
  return `https://${request.headers.host ?? request.hostname}/`;
}

function metadata(base: string) {
  const host = base.replace(/^https:\/\//, '').replace(/\/$/, '');
  return {
    portal: base,
    authentication: { loginEndpoint: base, audiences: ['https://management.core.windows.net/', 'https://management.azure.com/'], tenant: 'common', identityProvider: 'AAD' },
    media: base,
    graphAudience: 'https://graph.windows.net/',
    graph: base,
    name: 'Fleethub',
    suffixes: { azureDataLakeStoreFileSystem: host, acrLoginServer: host, sqlServerHostname: host, azureDataLakeAnalyticsCatalogAndJob: host, keyVaultDns: host, storage: host, azureFrontDoorEndpointSuffix: host },
    batch: base,
    resourceManager: base,
    vmImageAliasDoc: base,
    activeDirectoryDataLake: base,
    sqlManagement: base,
    microsoftGraphResourceId: 'https://graph.microsoft.com/',
    appInsightsResourceId: base,
    appInsightsTelemetryChannelResourceId: base,
    attestationResourceId: base,
    synapseAnalyticsResourceId: base,
    logAnalyticsResourceId: base,
    ossrDbmsResourceId: base,
  };
}

const lower = (s: string | undefined) => (s ?? '').toLowerCase();
const objectBody = (body: unknown): Record<string, unknown> => {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw armErrors.invalidContent('The request content must be a JSON object.');
  return body as Record<string, unknown>;
};
const ok = (body: unknown): Answer => ({ status: 200, body });
const list = (value: unknown[]): Answer => ({ status: 200, body: { value } });
const methodNotAllowed = (c: Call) => new ArmError(405, 'MethodNotAllowed', `The HTTP method '${c.method}' is not supported for this resource.`);

/**
 * The If-Match header's etag. azure-cli before 2.53 sent its IoT Hub updates' etag as the text of a
 * Python dict (`{'IF-MATCH': 'AAAAAAAAAAE='}`, fixed by azure-cli#27454), which IoT Hub took: the
 * etag inside is the one compared.
 */
function ifMatchOf(c: Call): string | undefined {
  const h = c.headers['if-match'] as string | undefined;
  const wrapped = h && /^\{\s*'IF-MATCH'\s*:\s*'([^']*)'\s*\}$/i.exec(h);
  return wrapped ? wrapped[1] : h;
}

async function dispatch(plane: ControlPlane, operations: Map<string, number>, c: Call): Promise<Answer> {
  const { seg, method } = c;
  // Extension resources at any scope: {scope}/providers/Microsoft.Authorization/{roleAssignments|roleDefinitions}[/{name}]
  for (let i = seg.length - 2; i >= 0; i--) {
    if (lower(seg[i]) === 'providers' && lower(seg[i + 1]) === 'microsoft.authorization' && ['roleassignments', 'roledefinitions'].includes(lower(seg[i + 2]))) {
      return authorizationResources(plane, c, seg.slice(0, i), lower(seg[i + 2]), seg.slice(i + 3));
    }
  }
  if (lower(seg[0]) === 'tenants' && seg.length === 1) {
    if (method !== 'GET') throw methodNotAllowed(c);
    const t = plane.tenancy;
    return list([{ id: `/tenants/${t.tenantId}`, tenantId: t.tenantId, tenantCategory: 'Home', displayName: 'Fleethub', defaultDomain: 'fleethub.local', domains: ['fleethub.local'] }]);
  }
  if (lower(seg[0]) === 'providers') {
    if (seg.length === 1 && method === 'GET') return list(plane.providerList());
    if (seg.length === 2 && method === 'GET') {
      const p = plane.providerList().find((x) => lower(x.namespace) === lower(seg[1]));
      if (!p) throw armErrors.notFound(`The resource provider '${seg[1]}' was not found.`);
      return ok(p);
    }
    throw armErrors.notFound(`No route for ${method} /${seg.join('/')}.`);
  }
  // /subscriptions…
  if (seg.length === 1) {
    if (method !== 'GET') throw methodNotAllowed(c);
    const readable = await plane.deps.access.allows(c.caller.principalId, plane.subscriptionScope, 'Microsoft.Resources/subscriptions/read');
    return list(readable ? [plane.subscription()] : []);
  }
  plane.checkSubscription(seg[1]!);
  const sub = plane.subscriptionScope;
  if (seg.length === 2) {
    if (method !== 'GET') throw methodNotAllowed(c);
    await plane.authorize(c.caller, sub, 'Microsoft.Resources/subscriptions/read');
    return ok(plane.subscription());
  }
  const third = lower(seg[2]);
  if (third === 'operationresults' && seg.length === 4) {
    const status = operations.get(seg[3]!);
    if (status === undefined) throw armErrors.notFound(`The operation '${seg[3]}' was not found.`);
    return { status };
  }
  if (third === 'resources' && seg.length === 3) {
    await plane.authorize(c.caller, sub, 'Microsoft.Resources/subscriptions/resources/read');
    return list(await plane.listResources());
  }
  if (third === 'providers') {
    if (seg.length === 3 && method === 'GET') return list(plane.providerList());
    const p = plane.providerList().find((x) => lower(x.namespace) === lower(seg[3]));
    if (seg.length === 4 && method === 'GET') {
      if (!p) throw armErrors.notFound(`The resource provider '${seg[3]}' was not found.`);
      return ok(p);
    }
    if (seg.length === 5 && method === 'POST' && lower(seg[4]) === 'register') {
      if (!p) throw armErrors.notFound(`The resource provider '${seg[3]}' was not found.`);
      return ok(p);
    }
    if (seg.length === 5 && method === 'POST' && p) {
      // Provider actions at the subscription (checkNameAvailability): the type that knows the action answers.
      await plane.authorize(c.caller, sub, `${p.namespace}/${seg[4]}/action`);
      const action = lower(seg[4]);
      const body = objectBody(c.body);
      for (const provider of plane.providers.filter((x) => lower(x.namespace) === lower(p.namespace))) {
        const answer = await provider.providerAction?.(action, body);
        if (answer !== undefined) return ok(answer);
      }
    }
    if (seg.length === 5 && method === 'GET') {
      const provider = plane.providerFor(seg[3]!, seg[4]!, c.apiVersion);
      await plane.authorize(c.caller, sub, `${provider.namespace}/${provider.type}/read`);
      return list(await provider.list({}));
    }
    throw armErrors.notFound(`No route for ${method} /${seg.join('/')}.`);
  }
  if (third !== 'resourcegroups') throw armErrors.notFound(`No route for ${method} /${seg.join('/')}.`);
  if (seg.length === 3) {
    if (method !== 'GET') throw methodNotAllowed(c);
    await plane.authorize(c.caller, sub, 'Microsoft.Resources/subscriptions/resourceGroups/read');
    return list(plane.listGroups());
  }
  const rg = seg[3]!;
  const groupScope = `${sub}/resourceGroups/${rg}`;
  if (seg.length === 4) return resourceGroup(plane, operations, c, rg, groupScope);
  plane.group(rg);
  if (lower(seg[4]) === 'resources' && seg.length === 5) {
    await plane.authorize(c.caller, groupScope, 'Microsoft.Resources/subscriptions/resourceGroups/resources/read');
    return list(await plane.listResources(rg));
  }
  if (lower(seg[4]) !== 'providers' || seg.length < 7) throw armErrors.notFound(`No route for ${method} /${seg.join('/')}.`);
  const provider = plane.providerFor(seg[5]!, seg[6]!, c.apiVersion);
  const typeName = `${provider.namespace}/${provider.type}`;
  if (seg.length === 7) {
    if (method !== 'GET') throw methodNotAllowed(c);
    await plane.authorize(c.caller, groupScope, `${typeName}/read`);
    return list(await provider.list({ resourceGroup: rg }));
  }
  const id: ResourceId = { subscriptionId: seg[1]!, resourceGroup: rg, namespace: provider.namespace, type: provider.type, name: seg[7]!, children: seg.slice(8) };
  const scope = `${groupScope}/providers/${provider.namespace}/${provider.type}/${id.name}`;
  if (id.children.length) {
    const action = method === 'POST' ? `${typeName}/${id.children.filter((_, i) => i % 2 === 0).join('/')}/action` : `${typeName}/${id.children.filter((_, i) => i % 2 === 0).join('/')}/${method === 'GET' ? 'read' : method === 'DELETE' ? 'delete' : 'write'}`;
    await plane.authorize(c.caller, scope, action);
    const ifMatch = ifMatchOf(c);
    const answer = provider.child ? await provider.child(method, id, c.body, ifMatch ? { ifMatch } : {}) : undefined;
    if (!answer) throw armErrors.notFound(`No route for ${method} /${seg.join('/')}.`);
    return answer;
  }
  switch (method) {
    case 'GET': {
      await plane.authorize(c.caller, scope, `${typeName}/read`);
      const r = await provider.get(id);
      if (!r) throw armErrors.resourceNotFound(typeName, id.name, rg);
      return ok(r);
    }
    case 'PUT': {
      await plane.authorize(c.caller, scope, `${typeName}/write`);
      const ifMatch = ifMatchOf(c);
      const { resource, created } = await provider.put(id, objectBody(c.body), { caller: c.caller, ...(ifMatch ? { ifMatch } : {}) });
      return { status: created ? 201 : 200, body: resource };
    }
    case 'PATCH': {
      await plane.authorize(c.caller, scope, `${typeName}/write`);
      return ok(await provider.patch(id, objectBody(c.body)));
    }
    case 'DELETE': {
      await plane.authorize(c.caller, scope, `${typeName}/delete`);
      return { status: (await provider.delete(id)) ? 200 : 204 };
    }
    default:
      throw methodNotAllowed(c);
  }
}

async function resourceGroup(plane: ControlPlane, operations: Map<string, number>, c: Call, rg: string, scope: string): Promise<Answer> {
  const action = (verb: string) => `Microsoft.Resources/subscriptions/resourceGroups/${verb}`;
  switch (c.method) {
    case 'HEAD':
      await plane.authorize(c.caller, scope, action('read'));
      return { status: plane.deps.store.groups.get(rg) ? 204 : 404 };
    case 'GET':
      await plane.authorize(c.caller, scope, action('read'));
      return ok(plane.groupToArm(plane.group(rg)));
    case 'PUT': {
      await plane.authorize(c.caller, scope, action('write'));
      const { created, body } = plane.putGroup(rg, objectBody(c.body));
      return { status: created ? 201 : 200, body };
    }
    case 'PATCH':
      await plane.authorize(c.caller, scope, action('write'));
      return ok(plane.patchGroup(rg, objectBody(c.body)));
    case 'DELETE': {
      await plane.authorize(c.caller, scope, action('delete'));
      plane.group(rg);
      await plane.deleteGroup(rg);
      // ARM deletes a group as a long-running operation: 202 and a Location that @azure/core-lro polls.
      const op = randomUUID();
      operations.set(op, 200);
      return {
        status: 202,
        headers: { location: `${c.base}subscriptions/${plane.tenancy.subscriptionId}/operationresults/${op}?api-version=${encodeURIComponent(c.apiVersion)}`, 'retry-after': '0' },
      };
    }
    default:
      throw methodNotAllowed(c);
  }
}

async function authorizationResources(plane: ControlPlane, c: Call, scopeSeg: string[], kind: string, rest: string[]): Promise<Answer> {
  const scope = scopeSeg.length ? '/' + scopeSeg.join('/') : '/';
  await checkScope(plane, scopeSeg, scope);
  const az = plane.authorization;
  if (kind === 'roledefinitions') {
    if (c.method !== 'GET' || rest.length > 1) throw methodNotAllowed(c);
    await plane.authorize(c.caller, scope === '/' ? plane.subscriptionScope : scope, 'Microsoft.Authorization/roleDefinitions/read');
    if (rest.length === 0) return list(az.listDefinitions(scope === '/' ? '' : scope, c.query['$filter']));
    return ok(az.getDefinition(scope === '/' ? '' : scope, rest[0]!));
  }
  if (rest.length > 1) throw armErrors.notFound(`No route for ${c.method} /${c.seg.join('/')}.`);
  const at = scope === '/' ? plane.subscriptionScope : scope;
  if (rest.length === 0) {
    if (c.method !== 'GET') throw methodNotAllowed(c);
    await plane.authorize(c.caller, at, 'Microsoft.Authorization/roleAssignments/read');
    return list(await az.listAssignments(at, c.query['$filter']));
  }
  const id = `${at}/providers/Microsoft.Authorization/roleAssignments/${rest[0]}`;
  switch (c.method) {
    case 'GET':
      await plane.authorize(c.caller, at, 'Microsoft.Authorization/roleAssignments/read');
      return ok(await az.getAssignment(id));
    case 'PUT': {
      await plane.authorize(c.caller, at, 'Microsoft.Authorization/roleAssignments/write');
      const { created, body } = await az.createAssignment(at, rest[0]!, objectBody(c.body));
      return { status: created ? 201 : 200, body };
    }
    case 'DELETE': {
      await plane.authorize(c.caller, at, 'Microsoft.Authorization/roleAssignments/delete');
      const deleted = await az.deleteAssignment(id);
      return deleted ? ok(deleted) : { status: 204 };
    }
    default:
      throw methodNotAllowed(c);
  }
}

/** ARM's error for a scope that names nothing: the missing subscription, group or resource. */
async function checkScope(plane: ControlPlane, seg: string[], scope: string): Promise<void> {
  if (seg.length === 0) return;
  if (lower(seg[0]) !== 'subscriptions' || seg.length < 2) throw armErrors.badRequest('InvalidScope', `The scope '${scope}' is not valid.`);
  plane.checkSubscription(seg[1]!);
  if (seg.length === 2) return;
  if (lower(seg[2]) !== 'resourcegroups' || seg.length < 4) throw armErrors.badRequest('InvalidScope', `The scope '${scope}' is not valid.`);
  plane.group(seg[3]!);
  if (seg.length === 4) return;
  if (!(await plane.scopeExists(scope))) {
    const parts = seg.slice(4);
    throw armErrors.resourceNotFound(`${parts[1] ?? ''}/${parts[2] ?? ''}`, parts[3] ?? '', seg[3]!);
  }
}
