/**
 * ARM REST routes of `Microsoft.Resources/deployments` (resource-group and subscription scope):
 * validate, create or update (long-running: 201 + Azure-AsyncOperation, polled at
 * `…/operationStatuses/{id}`), get, list, delete, operations, exportTemplate. Each resource of a
 * template is applied through `arm` (the control plane's own ARM dispatch, as the same caller).
 */
import { ArmError, armErrors } from '../../../control/errors.js';
import { TemplateArmError, type DeploymentScope, type Deployments, type ResourceApi } from '../../../control/deployments/deployments.js';
import type { ControlPlane } from '../../../control/plane.js';
import type { ArmAnswer, ArmCall, ArmRoute } from './armApi.js';

const lower = (s: string | undefined) => (s ?? '').toLowerCase();

/** The deployments' request bodies may be JSON5 (az 2.45 sends `template:` unquoted). */
export const isDeploymentsUrl = (url: string) => /\/providers\/microsoft\.resources\/deployments\//i.test(url.split('?', 1)[0]!);

export function deploymentsRoute(plane: ControlPlane, deployments: Deployments): ArmRoute {
  return async (c, arm) => {
    const m = match(c.seg);
    if (!m) return undefined;
    try {
      plane.checkSubscription(c.seg[1]!);
      if (m.scope.resourceGroup) plane.group(m.scope.resourceGroup);
      return await handle(plane, deployments, c, arm, m.scope, m.rest);
    } catch (e) {
      if (e instanceof TemplateArmError) return { status: e.status, body: { error: e.body } };
      throw e;
    }
  };
}

function match(seg: string[]): { scope: DeploymentScope; rest: string[] } | undefined {
  if (lower(seg[0]) !== 'subscriptions' || seg.length < 5) return undefined;
  const isDeployments = (i: number) => lower(seg[i]) === 'providers' && lower(seg[i + 1]) === 'microsoft.resources' && lower(seg[i + 2]) === 'deployments';
  if (isDeployments(2)) return { scope: {}, rest: seg.slice(5) };
  if (lower(seg[2]) === 'resourcegroups' && seg.length >= 7 && isDeployments(4)) return { scope: { resourceGroup: seg[3]! }, rest: seg.slice(7) };
  // Deployment operations also live at ARM's older path: /subscriptions/{s}/resourcegroups/{g}/deployments/{name}/operations[/{id}]
  if (lower(seg[2]) === 'resourcegroups' && lower(seg[4]) === 'deployments' && lower(seg[6]) === 'operations') return { scope: { resourceGroup: seg[3]! }, rest: seg.slice(5) };
  return undefined;
}

async function handle(plane: ControlPlane, d: Deployments, c: ArmCall, arm: (c: ArmCall) => Promise<ArmAnswer>, scope: DeploymentScope, rest: string[]): Promise<ArmAnswer> {
  const at = d.scopeId(scope);
  const authorize = (action: string) => plane.authorize(c.caller, at, `Microsoft.Resources/deployments/${action}`);
  const methodNotAllowed = () => new ArmError(405, 'MethodNotAllowed', `The HTTP method '${c.method}' is not supported for this resource.`);
  const [name, action, sub, ...extra] = rest;
  if (name === undefined) {
    if (c.method !== 'GET') throw methodNotAllowed();
    await authorize('read');
    return { status: 200, body: { value: d.listIn(scope) } };
  }
  if (action === undefined) {
    switch (c.method) {
      case 'GET':
        await authorize('read');
        return { status: 200, body: d.show(scope, name) };
      case 'HEAD':
        await authorize('read');
        try {
          d.show(scope, name);
          return { status: 204 };
        } catch {
          return { status: 404 };
        }
      case 'PUT': {
        await authorize('write');
        const { created, resource, asyncOperationId } = await d.begin(scope, name, c.body, c.caller, resourceApi(c, arm));
        const status = `${c.base}${d.deploymentId(scope, name).slice(1)}/operationStatuses/${asyncOperationId}?api-version=${encodeURIComponent(c.apiVersion)}`;
        return { status: created ? 201 : 200, body: resource, headers: { 'azure-asyncoperation': status, 'retry-after': '1' } };
      }
      case 'DELETE': {
        await authorize('delete');
        const op = d.remove(scope, name);
        if (!op) return { status: 204 };
        return {
          status: 202,
          headers: { location: `${c.base}${d.deploymentId(scope, name).slice(1)}/operationResults/${op}?api-version=${encodeURIComponent(c.apiVersion)}`, 'retry-after': '1' },
        };
      }
      default:
        throw methodNotAllowed();
    }
  }
  const verb = lower(action);
  if (c.method === 'POST' && sub === undefined) {
    switch (verb) {
      case 'validate':
        await authorize('validate/action');
        return { status: 200, body: await d.validate(scope, name, c.body, c.caller, resourceApi(c, arm)) };
      case 'exporttemplate':
        await authorize('exportTemplate/action');
        return { status: 200, body: d.exportTemplate(scope, name) };
      case 'cancel':
        await authorize('cancel/action');
        d.show(scope, name);
        throw armErrors.conflict('DeploymentCannotBeCancelled', `The deployment '${name}' has finished and cannot be cancelled.`);
      case 'whatif':
        throw armErrors.badRequest('WhatIfNotSupported', 'What-if is not supported by Fleethub; use validate.');
      default:
    }
  }
  if (c.method === 'GET' && verb === 'operations' && extra.length === 0) {
    await authorize('operations/read');
    if (sub === undefined) return { status: 200, body: { value: d.operations(scope, name) } };
    return { status: 200, body: d.operation(scope, name, sub) };
  }
  if (c.method === 'GET' && verb === 'operationstatuses' && sub !== undefined && extra.length === 0) {
    await authorize('operationstatuses/read');
    const status = d.status(scope, name, sub);
    // Pollers wait Retry-After between polls (az's default without it is 30 s).
    return { status: 200, body: status, ...(status.status === 'Succeeded' || status.status === 'Failed' ? {} : { headers: { 'retry-after': '1' } }) };
  }
  if (c.method === 'GET' && verb === 'operationresults' && sub !== undefined && extra.length === 0) {
    if (!d.deleteDone(sub)) throw armErrors.notFound(`The operation '${sub}' was not found.`);
    return { status: 200 };
  }
  throw armErrors.notFound(`No route for ${c.method} /${c.seg.join('/')}.`);
}

/** A resource of a template, applied through the ARM dispatch as the deployment's caller. */
function resourceApi(c: ArmCall, arm: (c: ArmCall) => Promise<ArmAnswer>): ResourceApi {
  const call = async (method: string, id: string, apiVersion: string, body?: unknown) => {
    let seg = id.split('/').filter((x) => x !== '');
    // A resource group of a subscription-scope template: /subscriptions/{s}/providers/Microsoft.Resources/resourceGroups/{g}
    if (seg.length === 6 && lower(seg[2]) === 'providers' && lower(seg[3]) === 'microsoft.resources' && lower(seg[4]) === 'resourcegroups') seg = [seg[0]!, seg[1]!, 'resourceGroups', seg[5]!];
    const answer = await arm({ ...c, method, seg, query: { 'api-version': apiVersion }, body, apiVersion, headers: {} });
    if (answer.status >= 400) {
      const err = (answer.body as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ArmError(answer.status, err?.code ?? 'ResourceDeploymentFailure', err?.message ?? `The resource operation completed with status ${answer.status}.`);
    }
    return answer;
  };
  return {
    put: async (id, apiVersion, body) => {
      const a = await call('PUT', id, apiVersion, body);
      return { status: a.status, body: a.body };
    },
    get: async (id, apiVersion) => (await call('GET', id, apiVersion)).body,
    post: async (id, apiVersion) => (await call('POST', id, apiVersion)).body,
  };
}
