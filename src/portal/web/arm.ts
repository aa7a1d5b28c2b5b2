/// <reference lib="dom" />
// ARM helpers of the resource pages (Managed Identities, namespaces, Identity, IAM): every call is
// a public ARM REST call with the signed-in administrator's management token.
import { call, session, settings, type Reply } from './api.js';
import { h } from './dom.js';

export const API = {
  hub: '2023-06-30',
  msi: '2023-01-31',
  eventHub: '2024-01-01',
  serviceBus: '2022-10-01-preview',
  authorization: '2022-04-01',
  resources: '2021-04-01',
};

export const enc = encodeURIComponent;

export function arm<T = unknown>(method: string, path: string, version: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> {
  if (!session?.management) throw new Error('Sign in as the administrator (the sign-in link or the client id and secret): this page uses Azure Resource Manager.');
  return call<T>('arm', method, `${path}${path.includes('?') ? '&' : '?'}api-version=${version}`, body, headers);
}

export const subscription = () => `/subscriptions/${settings.subscriptionId}`;
export const group = () => `${subscription()}/resourceGroups/${enc(settings.resourceGroup)}`;
export const hubId = () => `${group()}/providers/Microsoft.Devices/IotHubs/${enc(settings.hubName)}`;
export const identitiesPath = () => `${group()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`;

export interface Identity {
  id: string;
  name: string;
  location: string;
  properties: { principalId: string; clientId: string; tenantId: string };
}

export const listIdentities = async () => (await arm<{ value: Identity[] }>('GET', identitiesPath(), API.msi)).body.value;

/** The resource group's location: where new resources go (ARM requires one). */
export const groupLocation = async () => (await arm<{ location: string }>('GET', group(), API.resources)).body.location;

/** Azure's tab strip of a resource's blades. */
export function tabs(label: string, current: string, items: [string, string][]): HTMLElement {
  return h('nav', { class: 'tabs', 'aria-label': label }, ...items.map(([to, text]) => h('a', { href: `#/${to}`, 'aria-current': current === to ? 'page' : undefined }, text)));
}

/** The IAM page of a resource id. */
export const iamLink = (scope: string) => `iam?scope=${enc(scope)}`;

/** The last segment of a resource id (its name). */
export const nameOf = (id: string) => decodeURIComponent(id.split('/').filter(Boolean).pop() ?? id);
