/// <reference lib="dom" />
// The hub as an ARM resource (Microsoft.Devices/IotHubs): every change to routing and file upload is
// a PUT of the whole resource, read-modify-write with the etag read (If-Match), as Azure's portal does.
import { h, radios, select, field, uid } from './dom.js';
import { call, settings, session, ARM_HUB_API } from './api.js';

export const enc = encodeURIComponent;

export type AuthenticationType = 'keyBased' | 'identityBased';

/** What an outbound connection (a routing endpoint, the file upload storage) authenticates with. */
export interface Outbound {
  authenticationType?: AuthenticationType;
  identity?: { userAssignedIdentity?: string | null } | null;
  connectionString?: string;
  endpointUri?: string;
  entityPath?: string;
}

export interface HubResource {
  id: string;
  name: string;
  etag: string;
  location: string;
  identity?: { type: string; principalId?: string; userAssignedIdentities?: Record<string, { principalId?: string; clientId?: string }> };
  properties: Record<string, unknown> & {
    routing: RoutingProperties;
    storageEndpoints: { $default: Outbound & { containerName: string; sasTtlAsIso8601: string } };
    messagingEndpoints: { fileNotifications: { lockDurationAsIso8601: string; ttlAsIso8601: string; maxDeliveryCount: number } };
    enableFileUploadNotifications: boolean;
  };
}

export type EndpointKind = 'eventHubs' | 'serviceBusQueues' | 'serviceBusTopics' | 'storageContainers';

export interface Endpoint extends Outbound {
  name: string;
  containerName?: string;
  encoding?: string;
  fileNameFormat?: string;
  batchFrequencyInSeconds?: number;
  maxChunkSizeInBytes?: number;
}

export interface RouteProperties {
  name: string;
  source: string;
  condition?: string;
  endpointNames: string[];
  isEnabled: boolean;
}

export interface RoutingProperties {
  endpoints: Record<EndpointKind, Endpoint[]>;
  routes: RouteProperties[];
  fallbackRoute: RouteProperties;
  enrichments: { key: string; value: string; endpointNames: string[] }[];
}

export const hubPath = () =>
  `/subscriptions/${enc(settings.subscriptionId)}/resourceGroups/${enc(settings.resourceGroup)}/providers/Microsoft.Devices/IotHubs/${enc(settings.hubName)}`;

export async function getHub(): Promise<HubResource> {
  const hub = (await call<HubResource>('arm', 'GET', `${hubPath()}?api-version=${ARM_HUB_API}`)).body;
  const r = hub.properties.routing;
  for (const k of ['eventHubs', 'serviceBusQueues', 'serviceBusTopics', 'storageContainers'] as EndpointKind[]) r.endpoints[k] ??= [];
  r.routes ??= [];
  r.enrichments ??= [];
  return hub;
}

/** Reads the hub, lets `change` edit it, and PUTs it back with If-Match: ARM's refusal is thrown as is. */
export async function putHub(change: (hub: HubResource) => void): Promise<HubResource> {
  const hub = await getHub();
  change(hub);
  return (await call<HubResource>('arm', 'PUT', `${hubPath()}?api-version=${ARM_HUB_API}`, hub, { 'if-match': hub.etag })).body;
}

/** The pages that write the hub resource need the control plane's credential (the administrator's sign-in). */
export function needsManagement(main: HTMLElement, title: string): boolean {
  if (session?.management) return false;
  main.append(h('h1', {}, title), h('p', {}, 'This blade changes the hub resource through the control plane (ARM): sign in as the administrator (the sign-in link, or the client id and secret) to use it.'));
  return true;
}

/** The user-assigned identities attached to the hub (its identity.userAssignedIdentities), by resource id. */
export const attachedIdentities = (hub: HubResource) => Object.keys(hub.identity?.userAssignedIdentities ?? {});
const identityLabel = (id: string) => id.split('/').pop() ?? id;

export type AuthChoice = 'keyBased' | 'systemAssigned' | 'userAssigned';

export function authChoiceOf(o: Outbound): AuthChoice {
  if (o.authenticationType !== 'identityBased') return 'keyBased';
  return o.identity?.userAssignedIdentity ? 'userAssigned' : 'systemAssigned';
}

/**
 * Azure's "Authentication type" choice: Key-based, System-assigned or User-assigned with a picker of
 * the hub's attached user-assigned identities. `onChange` tells which one is chosen (to show the
 * fields each needs).
 */
export function authenticationChoice(hub: HubResource, current: Outbound, onChange: (c: AuthChoice) => void): { el: HTMLElement; choice(): AuthChoice; identity(): string | undefined } {
  const name = uid('auth');
  const ids = attachedIdentities(hub);
  const picker = field('User-assigned identity', select(ids.length ? ids.map((id) => [id, identityLabel(id)]) : [['', 'No user-assigned identity is attached to the hub']], current.identity?.userAssignedIdentity ?? ids[0]));
  const show = (c: AuthChoice) => {
    picker.wrap.hidden = c !== 'userAssigned';
    onChange(c);
  };
  const r = radios('Authentication type', name, [['keyBased', 'Key-based'], ['systemAssigned', 'System-assigned'], ['userAssigned', 'User-assigned']], authChoiceOf(current), (v) => show(v as AuthChoice));
  const el = h('div', {}, r.el, picker.wrap);
  queueMicrotask(() => show(r.value() as AuthChoice));
  return { el, choice: () => r.value() as AuthChoice, identity: () => picker.input.value || undefined };
}

/** The outbound settings for a choice (what goes in the resource). */
export function outboundFor(choice: AuthChoice, identity: string | undefined): Pick<Outbound, 'authenticationType' | 'identity'> {
  if (choice === 'keyBased') return { authenticationType: 'keyBased' };
  return { authenticationType: 'identityBased', identity: { userAssignedIdentity: choice === 'userAssigned' ? (identity ?? null) : null } };
}

/** Seconds of an ISO 8601 duration (PT1H30M, P1D); NaN when it is not one. */
export function isoSeconds(d: string | undefined): number {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(d ?? '');
  if (!m) return NaN;
  return Number(m[1] ?? 0) * 86400 + Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
}

export const numberInput = (value: number | string, min: number, max: number) => h('input', { type: 'number', value: String(value), min: String(min), max: String(max) });
