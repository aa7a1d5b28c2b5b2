/**
 * `Microsoft.Resources/deployments` at resource-group and subscription scope: a template with its
 * parameters, validated (everything the evaluator refuses, unknown resource types and api-versions,
 * missing permissions) before anything is applied, then applied resource by resource in dependency
 * order through the control plane's own ARM resource path (`ResourceApi`, given by the REST adapter:
 * the same authorization and providers as a PUT by id). Incremental mode only. The record, its
 * operations (one per resource) and outputs live in control.db beside the resources.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AccessControl, Principal, Tenancy } from '../../identity/types.js';
import type { ControlResourceStore, ResourceRecord } from '../../store/control.js';
import { ArmError, armErrors } from '../errors.js';
import type { ArmResource, ResourceTypeProvider } from '../provider.js';
import { parseResourceId, type ResourceId } from '../resourceIds.js';
import {
  ArmError as TemplateError,
  deploy,
  planDeployment,
  type ArmErrorBody,
  type DeploymentContext,
  type DeploymentPlan,
  type DeploymentResult,
  type PlannedResource,
  type ResourceResult,
} from '../templates/index.js';
import type { ControlPlane } from '../plane.js';

export const DEPLOYMENTS_TYPE = 'Microsoft.Resources/deployments';
export const DEPLOYMENT_API_VERSIONS = ['2024-03-01', '2023-07-01', '2022-09-01', '2021-04-01', '2021-01-01', '2020-10-01', '2020-06-01', '2019-10-01', '2019-08-01', '2019-07-01', '2019-05-10', '2018-05-01'];

/** Where a deployment lives: a resource group, or the subscription (no group). */
export interface DeploymentScope {
  resourceGroup?: string;
}

/** The control plane's ARM resource operations, as the caller (the REST adapter routes them through its own dispatch). */
export interface ResourceApi {
  put(id: string, apiVersion: string, body: Record<string, unknown>): Promise<{ status: number; body: unknown }>;
  get(id: string, apiVersion: string): Promise<unknown>;
  post(id: string, apiVersion: string): Promise<unknown>;
}

type Json = unknown;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const lower = (s: string) => s.toLowerCase();

export interface DeploymentOperation {
  id: string;
  operationId: string;
  properties: {
    provisioningOperation: 'Create';
    provisioningState: string;
    timestamp: string;
    duration: string;
    trackingId: string;
    statusCode: string;
    statusMessage?: unknown;
    targetResource: { id: string; resourceType: string; resourceName: string; apiVersion?: string };
  };
}

/** What control.db keeps of a deployment (the ResourceRecord's body). */
interface DeploymentBody {
  location?: string;
  mode: 'Incremental';
  template: Obj;
  templateHash: string;
  parameters: Record<string, { type: string; value: Json }>;
  provisioningState: 'Accepted' | 'Running' | 'Succeeded' | 'Failed';
  timestamp: string;
  startedAt: string;
  duration: string;
  correlationId: string;
  /** The id of the long-running operation (operationStatuses/{id}). */
  asyncOperationId: string;
  outputs?: Record<string, { type: string; value: Json }>;
  outputResources: { id: string }[];
  dependencies: { id: string; resourceType: string; resourceName: string; dependsOn: { id: string; resourceType: string; resourceName: string }[] }[];
  providers: { namespace: string; resourceTypes: { resourceType: string; locations: string[] }[] }[];
  error?: ArmErrorBody;
  operations: DeploymentOperation[];
  debugSetting?: unknown;
}

const NAME = /^[-\w._()]{1,64}$/;
const PARAM_TYPE: Record<string, string> = { string: 'String', securestring: 'SecureString', int: 'Int', bool: 'Bool', object: 'Object', secureobject: 'SecureObject', array: 'Array' };
/** Types the deployment engine itself understands (not resource providers). */
const ENGINE_TYPES = new Set(['microsoft.resources/deployments']);

const duration = (from: string, to = new Date().toISOString()) => `PT${((Date.parse(to) - Date.parse(from)) / 1000).toFixed(7).replace(/\.?0+$/, '') || '0'}S`;
const statusText: Record<number, string> = { 200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'NoContent', 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 409: 'Conflict', 412: 'PreconditionFailed', 500: 'InternalServerError' };

export class Deployments implements ResourceTypeProvider {
  readonly namespace = 'Microsoft.Resources';
  readonly type = 'deployments';
  readonly apiVersions = DEPLOYMENT_API_VERSIONS;
  /** Deployments being applied now, by key (a second PUT of the same name waits its turn as ARM's 409). */
  private readonly active = new Set<string>();
  /** Deployments deleted: their operation ids (the DELETE's operationResults answer 200). */
  private readonly deleted = new Set<string>();

  constructor(
    private readonly deps: {
      plane: ControlPlane;
      store: ControlResourceStore;
      tenancy: Tenancy;
      access: AccessControl;
      logger: Logger;
    },
  ) {}

  // ---- ids and records -----------------------------------------------------------------------

  scopeId(scope: DeploymentScope): string {
    const sub = `/subscriptions/${this.deps.tenancy.subscriptionId}`;
    return scope.resourceGroup ? `${sub}/resourceGroups/${this.deps.plane.group(scope.resourceGroup).name}` : sub;
  }

  deploymentId(scope: DeploymentScope, name: string): string {
    return `${this.scopeId(scope)}/providers/${DEPLOYMENTS_TYPE}/${name}`;
  }

  private record(scope: DeploymentScope, name: string): ResourceRecord | undefined {
    return this.deps.store.resources.get(this.deploymentId(scope, name));
  }

  private mustGet(scope: DeploymentScope, name: string): ResourceRecord {
    const r = this.record(scope, name);
    if (!r) throw new ArmError(404, 'DeploymentNotFound', `Deployment '${name}' could not be found.`);
    return r;
  }

  toArm(r: ResourceRecord): ArmResource {
    const b = r.body as DeploymentBody;
    const properties: Obj = {
      templateHash: b.templateHash,
      parameters: b.parameters,
      mode: b.mode,
      provisioningState: b.provisioningState,
      timestamp: b.timestamp,
      duration: b.duration,
      correlationId: b.correlationId,
      providers: b.providers,
      dependencies: b.dependencies,
      outputResources: b.outputResources,
      ...(b.outputs ? { outputs: b.outputs } : {}),
      ...(b.error ? { error: b.error } : {}),
    };
    return { id: r.id, name: r.name, type: DEPLOYMENTS_TYPE, ...(b.location ? { location: b.location } : {}), ...(Object.keys(r.tags).length ? { tags: r.tags } : {}), properties };
  }

  // ---- ResourceTypeProvider (group deletion, provider list) ------------------------------------

  async get(id: ResourceId) {
    const r = this.deps.store.resources.get(`/subscriptions/${id.subscriptionId}/resourceGroups/${id.resourceGroup}/providers/${DEPLOYMENTS_TYPE}/${id.name}`);
    return r ? this.toArm(r) : undefined;
  }

  /** Deployments are not resources of their group in ARM's resource lists. */
  async list(): Promise<ArmResource[]> {
    return [];
  }

  async put(): Promise<never> {
    throw armErrors.badRequest('InvalidRequest', 'Deployments are created through their own route.');
  }

  async patch(): Promise<never> {
    throw new ArmError(405, 'MethodNotAllowed', "The HTTP method 'PATCH' is not supported for deployments.");
  }

  async delete(id: ResourceId) {
    return this.deps.store.resources.delete(`/subscriptions/${id.subscriptionId}/resourceGroups/${id.resourceGroup}/providers/${DEPLOYMENTS_TYPE}/${id.name}`);
  }

  // ---- the deployments API ---------------------------------------------------------------------

  listIn(scope: DeploymentScope): ArmResource[] {
    const prefix = lower(`${this.scopeId(scope)}/providers/${DEPLOYMENTS_TYPE}/`);
    return this.deps.store.resources
      .list({ type: DEPLOYMENTS_TYPE, resourceGroup: scope.resourceGroup ?? '' })
      .filter((r) => lower(r.id).startsWith(prefix))
      .map((r) => this.toArm(r));
  }

  show(scope: DeploymentScope, name: string): ArmResource {
    return this.toArm(this.mustGet(scope, name));
  }

  exportTemplate(scope: DeploymentScope, name: string) {
    return { template: (this.mustGet(scope, name).body as DeploymentBody).template };
  }

  /** Deletes the deployment's record (not its resources, as ARM). Undefined when there was none. */
  remove(scope: DeploymentScope, name: string): string | undefined {
    const r = this.record(scope, name);
    if (!r) return undefined;
    if (this.active.has(lower(r.id))) throw armErrors.conflict('DeploymentActive', `The deployment '${name}' is still running; it can be deleted when it has finished.`);
    this.deps.store.resources.delete(r.id);
    const op = randomUUID();
    this.deleted.add(op);
    return op;
  }

  deleteDone(op: string): boolean {
    return this.deleted.has(op);
  }

  operations(scope: DeploymentScope, name: string): DeploymentOperation[] {
    return (this.mustGet(scope, name).body as DeploymentBody).operations;
  }

  operation(scope: DeploymentScope, name: string, operationId: string): DeploymentOperation {
    const op = this.operations(scope, name).find((o) => lower(o.operationId) === lower(operationId));
    if (!op) throw new ArmError(404, 'DeploymentOperationNotFound', `Deployment operation '${operationId}' of deployment '${name}' could not be found.`);
    return op;
  }

  /** The long-running operation's status (`…/operationStatuses/{id}`), as @azure/core-lro and az poll it. */
  status(scope: DeploymentScope, name: string, asyncOperationId: string): { status: string; error?: ArmErrorBody } {
    const r = this.record(scope, name);
    const b = r?.body as DeploymentBody | undefined;
    if (!b || b.asyncOperationId !== asyncOperationId) throw armErrors.notFound(`The operation '${asyncOperationId}' was not found.`);
    return { status: b.provisioningState, ...(b.error ? { error: b.error } : {}) };
  }

  /**
   * Preflight: ARM's validation. Everything wrong with the template, its parameters, its resource
   * types and api-versions, or the caller's permissions is an error here, before anything is applied.
   */
  async validate(scope: DeploymentScope, name: string, body: unknown, caller: Principal, api: ResourceApi) {
    const request = this.parseRequest(scope, name, body);
    const { plan } = await this.preflight(scope, name, request, caller, api);
    const resources = flatten(plan.resources).filter((p) => p.condition);
    return {
      id: this.deploymentId(scope, name),
      name,
      type: DEPLOYMENTS_TYPE,
      ...(request.location ? { location: request.location } : {}),
      properties: {
        templateHash: templateHash(request.template),
        parameters: this.typedParameters(request.template, plan.parameters),
        mode: 'Incremental',
        provisioningState: 'Succeeded',
        timestamp: new Date().toISOString(),
        duration: 'PT0S',
        correlationId: randomUUID(),
        providers: providers(resources),
        dependencies: dependencies(resources),
        validatedResources: resources.map((p) => ({ id: p.id })),
      },
    };
  }

  /**
   * Create or update: validated now (errors thrown, nothing applied, no record written), then applied
   * in the background. Returns at once with provisioningState Accepted and the operation to poll.
   */
  async begin(scope: DeploymentScope, name: string, body: unknown, caller: Principal, api: ResourceApi, onDone?: (result: ArmResource) => void) {
    const request = this.parseRequest(scope, name, body);
    const id = this.deploymentId(scope, name);
    if (this.active.has(lower(id))) throw armErrors.conflict('DeploymentActive', `Unable to edit or replace deployment '${name}': previous deployment from '${new Date().toISOString()}' is still active. Please see https://aka.ms/arm-deploy for usage details.`);
    const { plan, ctx } = await this.preflight(scope, name, request, caller, api);
    const existing = this.record(scope, name);
    const now = new Date().toISOString();
    const resources = flatten(plan.resources).filter((p) => p.condition);
    const state: DeploymentBody = {
      ...(request.location ? { location: request.location } : {}),
      mode: 'Incremental',
      template: request.template,
      templateHash: templateHash(request.template),
      parameters: this.typedParameters(request.template, plan.parameters),
      provisioningState: 'Accepted',
      timestamp: now,
      startedAt: now,
      duration: 'PT0S',
      correlationId: randomUUID(),
      asyncOperationId: randomBytes(8).toString('hex').toUpperCase() + randomBytes(2).toString('hex').toUpperCase(),
      outputResources: [],
      dependencies: dependencies(plan.resources.filter((p) => p.condition)),
      providers: providers(resources),
      operations: [],
    };
    const record: ResourceRecord = {
      id: existing?.id ?? id,
      type: DEPLOYMENTS_TYPE,
      resourceGroup: scope.resourceGroup ? this.deps.plane.group(scope.resourceGroup).name : '',
      name,
      location: request.location ?? '',
      tags: request.tags,
      body: state,
      etag: randomUUID(),
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    };
    this.deps.store.resources.put(record);
    const accepted = this.toArm(structuredClone(record));
    this.active.add(lower(id));
    void this.run(record, request, ctx, plan, api)
      .catch((e) => this.deps.logger.error({ err: e, deployment: id }, 'deployment failed unexpectedly'))
      .finally(() => {
        this.active.delete(lower(id));
        const r = this.deps.store.resources.get(id);
        if (r && onDone) onDone(this.toArm(r));
      });
    return { created: !existing, resource: accepted, asyncOperationId: state.asyncOperationId };
  }

  /** Deployments interrupted by a stop are Failed at the next start (nothing is running them). */
  markInterrupted(): void {
    for (const r of this.deps.store.resources.list({ type: DEPLOYMENTS_TYPE })) {
      const b = r.body as DeploymentBody;
      if (b.provisioningState === 'Accepted' || b.provisioningState === 'Running') {
        this.deps.store.resources.put({
          ...r,
          body: { ...b, provisioningState: 'Failed', error: { code: 'DeploymentInterrupted', message: 'Fleethub stopped while this deployment was running; resources applied before the stop stay applied. Deploy again to finish it.' } },
        });
      }
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  private parseRequest(scope: DeploymentScope, name: string, body: unknown) {
    if (!NAME.test(name)) {
      throw armErrors.badRequest('InvalidDeploymentName', `The deployment name '${name}' is invalid: 1 to 64 letters, digits, '-', '_', '.', '(' and ')'.`);
    }
    if (!isObj(body)) throw armErrors.invalidContent('The request content must be a JSON object with a properties object.');
    const props = body.properties;
    if (!isObj(props)) throw armErrors.invalidContent("The request content is missing the required 'properties' object.");
    if (props.templateLink !== undefined) throw armErrors.badRequest('InvalidTemplateLink', "Linked templates ('properties.templateLink') are not supported by Fleethub: send the template inline in 'properties.template'.");
    if (props.parametersLink !== undefined) throw armErrors.badRequest('InvalidParametersLink', "'properties.parametersLink' is not supported by Fleethub: send the parameters inline in 'properties.parameters'.");
    const mode = typeof props.mode === 'string' ? props.mode : undefined;
    if (!mode) throw armErrors.invalidContent("The request content is missing the required deployment 'properties.mode' ('Incremental').");
    if (lower(mode) === 'complete') {
      throw armErrors.badRequest('DeploymentModeNotSupported', "The deployment mode 'Complete' (which deletes the group's resources that are not in the template) is not supported by Fleethub; use 'Incremental'.");
    }
    if (lower(mode) !== 'incremental') throw armErrors.badRequest('InvalidDeploymentMode', `The deployment mode '${mode}' is not valid. The allowed modes are 'Incremental' and 'Complete'.`);
    if (!isObj(props.template)) throw armErrors.badRequest('InvalidTemplate', "Deployment template validation failed: 'The deployment needs an inline 'properties.template' object.'.");
    if (props.parameters !== undefined && !isObj(props.parameters)) throw armErrors.badRequest('InvalidTemplate', "Deployment template validation failed: 'The deployment 'properties.parameters' must be an object.'.");
    const location = typeof body.location === 'string' && body.location ? body.location : undefined;
    if (!scope.resourceGroup && !location) throw armErrors.badRequest('LocationRequired', 'The location property is required for this definition (a subscription-scope deployment).');
    const tags = isObj(body.tags) ? Object.fromEntries(Object.entries(body.tags).map(([k, v]) => [k, String(v)])) : {};
    return { template: props.template, parameters: (props.parameters as Obj | undefined) ?? {}, location, tags };
  }

  private context(scope: DeploymentScope, name: string, snapshot: Snapshot): DeploymentContext {
    const t = this.deps.tenancy;
    const g = scope.resourceGroup ? this.deps.plane.group(scope.resourceGroup) : undefined;
    return {
      subscriptionId: t.subscriptionId,
      tenantId: t.tenantId,
      subscriptionDisplayName: t.subscriptionDisplayName,
      ...(g ? { resourceGroup: { name: g.name, location: g.location, id: `/subscriptions/${t.subscriptionId}/resourceGroups/${g.name}`, tags: g.tags } } : {}),
      deploymentName: name,
      reference: (id) => snapshot.resources.get(lower(id)),
      listKeys: (id) => snapshot.keys.get(lower(id)),
    };
  }

  private async preflight(scope: DeploymentScope, name: string, request: ReturnType<Deployments['parseRequest']>, caller: Principal, api: ResourceApi) {
    const snapshot = await this.snapshot(caller, api, JSON.stringify(request.template).toLowerCase().includes('listkeys'));
    const ctx = this.context(scope, name, snapshot);
    let plan: DeploymentPlan;
    try {
      plan = planDeployment(request.template, request.parameters, ctx);
    } catch (e) {
      throw asArmError(e);
    }
    // Resource providers and api-versions, and the caller's right to write each resource.
    for (const p of flatten(plan.resources)) {
      if (!p.condition || ENGINE_TYPES.has(lower(p.type))) continue;
      const [namespace, ...types] = p.type.split('/');
      const top = types[0] ?? '';
      if (!(lower(namespace!) === 'microsoft.resources' && lower(top) === 'resourcegroups') && lower(namespace!) !== 'microsoft.authorization') {
        try {
          this.deps.plane.providerFor(namespace!, top, p.apiVersion);
        } catch (e) {
          if (e instanceof ArmError) throw withPath(e, p);
          throw e;
        }
      }
      if (!(await this.deps.access.allows(caller.principalId, p.id, `${p.type}/write`))) {
        throw new ArmError(
          403,
          'AuthorizationFailed',
          `The client '${caller.principalId}' with object id '${caller.principalId}' does not have authorization to perform action '${p.type}/write' over scope '${p.id}' (resource at '${p.path}' of the template) or the scope is invalid.`,
        );
      }
    }
    return { plan, ctx, snapshot };
  }

  /** What reference() and listKeys() of resources outside the template read: those the caller may read, now. */
  private async snapshot(caller: Principal, api: ResourceApi, withKeys: boolean): Promise<Snapshot> {
    const resources = new Map<string, unknown>();
    const keys = new Map<string, unknown>();
    for (const p of this.deps.plane.providers) {
      if (p === this) continue;
      for (const r of await p.list({})) {
        if (!(await this.deps.access.allows(caller.principalId, r.id, `${p.namespace}/${p.type}/read`))) continue;
        resources.set(lower(r.id), r);
        if (withKeys) {
          for (const id of [r.id, ...(p.keyedChildren?.(r.id) ?? [])]) {
            const k = await api.post(`${id}/listKeys`, p.apiVersions[0]!).catch(() => undefined);
            if (k !== undefined) keys.set(lower(id), k);
          }
        }
      }
    }
    return { resources, keys };
  }

  private typedParameters(template: Obj, values: Record<string, Json>): DeploymentBody['parameters'] {
    const defs = isObj(template.parameters) ? template.parameters : {};
    const out: DeploymentBody['parameters'] = {};
    for (const [k, v] of Object.entries(values)) {
      const def = Object.entries(defs).find(([n]) => lower(n) === lower(k))?.[1];
      const type = isObj(def) && typeof def.type === 'string' ? (PARAM_TYPE[lower(def.type)] ?? def.type) : 'String';
      out[k] = { type, value: type.startsWith('Secure') ? undefined : v };
    }
    return out;
  }

  private async run(record: ResourceRecord, request: ReturnType<Deployments['parseRequest']>, ctx: DeploymentContext, plan: DeploymentPlan, api: ResourceApi) {
    const store = this.deps.store;
    const state = record.body as DeploymentBody;
    const save = (patch: Partial<DeploymentBody>) => {
      Object.assign(state, patch);
      store.resources.put({ ...record, body: state, updatedAt: new Date().toISOString() });
    };
    save({ provisioningState: 'Running' });
    const statusCodes = new Map<string, number>();
    const startedAt = new Map<string, string>();
    const withKeys = JSON.stringify(request.template).toLowerCase().includes('listkeys');
    let result: DeploymentResult;
    try {
      result = await deploy(request.template, request.parameters, ctx, async (r) => {
        startedAt.set(lower(r.id), new Date().toISOString());
        const progress = (status: number, error?: ArmErrorBody) => {
          // Operations as they finish, for whoever watches the deployment run (replaced by the full list at the end).
          const done = { id: r.id, type: r.type, name: r.name, status: error ? 'Failed' : 'Succeeded', ...(error ? { error } : {}) } as ResourceResult;
          save({ operations: [...state.operations, this.operationFor(record.id, done, undefined, status, startedAt.get(lower(r.id))!, new Date().toISOString())] });
        };
        try {
          const answer = await api.put(r.id, r.apiVersion, r.body as Obj);
          statusCodes.set(lower(r.id), answer.status);
          progress(answer.status);
          if (withKeys) {
            // The resource's own keys, and those of the children that came with it (a namespace's RootManageSharedAccessKey).
            const parsed = parseResourceId(r.id);
            const provider = parsed && !parsed.children.length ? this.deps.plane.providers.find((p) => lower(p.namespace) === lower(parsed.namespace) && lower(p.type) === lower(parsed.type)) : undefined;
            for (const id of [r.id, ...(provider?.keyedChildren?.(r.id) ?? [])]) {
              const k = await api.post(`${id}/listKeys`, r.apiVersion).catch(() => undefined);
              if (k !== undefined) (ctx as { listKeys: DeploymentContext['listKeys'] }).listKeys = chainKeys(ctx.listKeys, id, k);
            }
          }
          return (isObj(answer.body) ? answer.body : (await api.get(r.id, r.apiVersion))) as Obj;
        } catch (e) {
          if (e instanceof ArmError) {
            statusCodes.set(lower(r.id), e.status);
            progress(e.status, { code: e.code, message: e.message });
            throw new TemplateError(e.code, e.message, e.status);
          }
          throw e;
        }
      });
    } catch (e) {
      // deploy() validates again first: a template error here means something changed since the preflight.
      const error = asArmError(e);
      save({ provisioningState: 'Failed', error: { code: error.code, message: error.message }, duration: duration(state.startedAt), timestamp: new Date().toISOString() });
      return;
    }
    const now = new Date().toISOString();
    const byId = new Map(flatten(plan.resources).map((p) => [lower(p.id), p]));
    const operationsOf = (results: ResourceResult[]) =>
      results
        .filter((r) => r.status !== 'Skipped')
        .map((r) => this.operationFor(record.id, r, byId.get(lower(r.id)), statusCodes.get(lower(r.id)), startedAt.get(lower(r.id)) ?? state.startedAt, now));
    // Nested deployments are deployments of their own (ARM lists them beside the parent).
    for (const r of result.resources) {
      if (r.nested) this.saveNested(record, r, byId.get(lower(r.id)), operationsOf(r.nested.resources), state.startedAt, now);
    }
    const outputResources = collectApplied(result.resources);
    save({
      provisioningState: result.status,
      duration: duration(state.startedAt, now),
      timestamp: now,
      operations: operationsOf(result.resources),
      outputResources: outputResources.map((id) => ({ id })),
      ...(result.status === 'Succeeded' ? { outputs: result.outputs } : {}),
      ...(result.error ? { error: result.error } : {}),
    });
  }

  private operationFor(deploymentId: string, r: ResourceResult, planned: PlannedResource | undefined, status: number | undefined, started: string, now: string): DeploymentOperation {
    const operationId = createHash('sha256').update(`${deploymentId}\n${r.id}`).digest('hex').slice(0, 16).toUpperCase();
    const code = status ?? (r.status === 'Succeeded' ? 200 : r.error?.code === 'InvalidTemplate' ? 400 : 500);
    return {
      id: `${deploymentId}/operations/${operationId}`,
      operationId,
      properties: {
        provisioningOperation: 'Create',
        provisioningState: r.status,
        timestamp: now,
        duration: duration(started, now),
        trackingId: randomUUID(),
        statusCode: statusText[code] ?? String(code),
        ...(r.status === 'Failed' ? { statusMessage: { status: 'Failed', error: r.error } } : {}),
        targetResource: { id: r.id, resourceType: r.type, resourceName: r.name, ...(planned ? { apiVersion: planned.apiVersion } : {}) },
      },
    };
  }

  private saveNested(parent: ResourceRecord, r: ResourceResult, planned: PlannedResource | undefined, operations: DeploymentOperation[], startedAt: string, now: string) {
    const nested = r.nested!;
    const id = `${parent.id.slice(0, parent.id.lastIndexOf('/providers/'))}/providers/${DEPLOYMENTS_TYPE}/${r.name}`;
    const template = isObj(planned?.body?.properties) && isObj((planned!.body!.properties as Obj).template) ? ((planned!.body!.properties as Obj).template as Obj) : {};
    const body: DeploymentBody = {
      mode: 'Incremental',
      template,
      templateHash: templateHash(template),
      parameters: {},
      provisioningState: nested.status,
      timestamp: now,
      startedAt,
      duration: duration(startedAt, now),
      correlationId: (parent.body as DeploymentBody).correlationId,
      asyncOperationId: randomBytes(10).toString('hex').toUpperCase(),
      outputResources: collectApplied(nested.resources).map((x) => ({ id: x })),
      dependencies: [],
      providers: providers(planned?.nested?.resources ?? []),
      operations: operations.map((o) => ({ ...o, id: `${id}/operations/${o.operationId}` })),
      ...(nested.status === 'Succeeded' ? { outputs: nested.outputs } : {}),
      ...(nested.error ? { error: nested.error } : {}),
    };
    const existing = this.deps.store.resources.get(id);
    this.deps.store.resources.put({ id: existing?.id ?? id, type: DEPLOYMENTS_TYPE, resourceGroup: parent.resourceGroup, name: r.name, location: parent.location, tags: {}, body, etag: randomUUID(), createdAt: existing?.createdAt ?? now, updatedAt: now });
  }
}

interface Snapshot {
  resources: Map<string, unknown>;
  keys: Map<string, unknown>;
}

function chainKeys(prev: DeploymentContext['listKeys'], id: string, keys: unknown): DeploymentContext['listKeys'] {
  return (target, apiVersion) => (lower(target) === lower(id) ? keys : prev(target, apiVersion));
}

/** Every planned resource, nested deployments' included (depth first). */
function flatten(list: PlannedResource[]): PlannedResource[] {
  return list.flatMap((p) => [p, ...(p.nested ? flatten(p.nested.resources) : [])]);
}

function collectApplied(results: ResourceResult[]): string[] {
  return results.flatMap((r) => (r.nested ? collectApplied(r.nested.resources) : r.status === 'Succeeded' ? [r.id] : []));
}

function providers(resources: PlannedResource[]): DeploymentBody['providers'] {
  const byNs = new Map<string, Set<string>>();
  for (const p of resources) {
    const [ns, ...types] = p.type.split('/');
    if (!byNs.has(ns!)) byNs.set(ns!, new Set());
    byNs.get(ns!)!.add(types.join('/'));
  }
  return [...byNs].map(([namespace, types]) => ({ namespace, resourceTypes: [...types].map((resourceType) => ({ resourceType, locations: [] as string[] })) }));
}

function dependencies(resources: PlannedResource[]): DeploymentBody['dependencies'] {
  const byId = new Map(resources.map((p) => [lower(p.id), p]));
  return resources
    .filter((p) => p.dependsOn.length)
    .map((p) => ({
      id: p.id,
      resourceType: p.type,
      resourceName: p.name,
      dependsOn: p.dependsOn.map((d) => {
        const t = byId.get(lower(d));
        return { id: d, resourceType: t?.type ?? '', resourceName: t?.name ?? '' };
      }),
    }));
}

/** ARM's templateHash: a decimal 64-bit number derived from the template's content. */
function templateHash(template: unknown): string {
  return createHash('sha256').update(JSON.stringify(template)).digest().readBigUInt64BE(0).toString();
}

/** The evaluator's errors as the control plane's (the REST adapter writes those). */
function asArmError(e: unknown): ArmError {
  if (e instanceof ArmError) return e;
  if (e instanceof TemplateError) return new TemplateArmError(e.status, e.code, e.message, e.toBody());
  throw e;
}

/** An evaluator error keeps its whole body (additionalInfo with the template path, details). */
export class TemplateArmError extends ArmError {
  constructor(
    status: number,
    code: string,
    message: string,
    readonly body: ArmErrorBody,
  ) {
    super(status, code, message);
  }
}

function withPath(e: ArmError, p: PlannedResource): ArmError {
  return new TemplateArmError(e.status, e.code, `${e.message} (resource '${p.name}' at '${p.path}' of the template)`, {
    code: e.code,
    message: `${e.message} (resource '${p.name}' at '${p.path}' of the template)`,
    target: p.id,
    additionalInfo: [{ type: 'TemplateViolation', info: { lineNumber: 0, linePosition: 0, path: p.path } }],
  });
}
