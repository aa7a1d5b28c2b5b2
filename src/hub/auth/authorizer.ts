import { errors } from '../../core/errors.js';
import { parseSasToken, resourceCovers, serviceBusSignatureMatches, signatureMatches, type SasToken } from '../../core/sas.js';
import type { DeviceStore, ModuleStore, PolicyStore } from '../../store/index.js';
import type { Authentication, Device, Module } from '../registry/types.js';
import type { Permission } from './types.js';
import { bearerToken, type BearerVerifier } from './bearer.js';
import { dataActionsForPermission } from './dataActions.js';

export type Principal =
  | { kind: 'policy'; keyName: string; rights: Permission[]; resource: string }
  | { kind: 'device'; deviceId: string; moduleId?: string; resource: string }
  /** An Azure AD principal (bearer token), authorized by IoT Hub's data roles. */
  | { kind: 'aad'; principalId: string; expiresAt: number; resource: string };

/**
 * Validates shared access signatures the way IoT Hub does: a well-formed token, not expired,
 * signed with a policy key (`skn`) or a device/module key (no `skn`), whose `sr` covers the
 * resource being accessed, and whose rights include the operation's permission.
 */
export class Authorizer {
  private readonly hosts: Set<string>;

  constructor(
    hostNames: string[],
    private readonly policies: PolicyStore,
    private readonly devices: DeviceStore,
    private readonly modules: ModuleStore,
    private readonly now: () => number = Date.now,
    /** Azure AD bearer tokens; without it only shared access signatures are accepted. */
    private readonly bearer?: BearerVerifier,
  ) {
    this.hosts = new Set(hostNames.map((h) => h.toLowerCase()));
  }

  /**
   * @param authorization the Authorization header (or CBS/MQTT password)
   * @param permission    what the operation needs; with a list, any one of them suffices
   * @param resourcePath  the path of the resource under the hub, e.g. `/devices/d1`, or '' for the hub
   * @param dataActions   for a bearer token: the IoT Hub data actions the operation needs (all of them);
   *                      derived from `permission` when not given
   */
  async authorize(
    authorization: string | undefined,
    permission: Permission | readonly Permission[],
    resourcePath = '',
    dataActions?: readonly string[],
  ): Promise<Principal> {
    if (!authorization) throw errors.unauthorized('Authorization header is missing');
    const jwt = bearerToken(authorization);
    if (jwt !== undefined) {
      if (!this.bearer) throw errors.unauthorized('Azure AD bearer tokens are not accepted by this hub');
      const needed = dataActions ?? dataActionsForPermission(permission);
      if (!needed) throw errors.unauthorized('Azure AD tokens are not accepted for this operation (device APIs and the Event Hub-compatible endpoint take SAS tokens)');
      const { principalId, expiresAt } = await this.bearer.authorize(jwt, needed);
      return { kind: 'aad', principalId, expiresAt, resource: resourcePath };
    }
    const token = parseSasToken(authorization);
    if (!token) throw errors.unauthorized('Malformed SharedAccessSignature');
    if (token.expiry * 1000 <= this.now()) throw errors.unauthorized('SharedAccessSignature is expired');
    const host = this.hostOf(token);
    if (!host) throw errors.unauthorized(`SharedAccessSignature audience '${token.resource}' is not this hub`);
    if (!resourceCovers(token.resource, host + resourcePath)) {
      throw errors.unauthorized(`SharedAccessSignature audience '${token.resource}' does not cover '${host}${resourcePath}'`);
    }
    const principal = token.keyName !== undefined ? await this.policyPrincipal(token) : (await this.devicePrincipal(token, host)).principal;
    const wanted = typeof permission === 'string' ? [permission] : permission;
    if (!wanted.some((p) => grants(principal, p))) throw errors.unauthorized(`Unauthorized: the token does not grant ${wanted.join(' or ')}`);
    return principal;
  }

  private hostOf(token: SasToken): string | undefined {
    const host = token.resource.replace(/^[a-z]+:\/\//i, '').split('/')[0]!.toLowerCase().replace(/^(\[[^\]]*\]|[^:/]+):\d+$/, '$1');
    return this.hosts.has(host) ? host : undefined;
  }

  private async policyPrincipal(token: SasToken): Promise<Principal> {
    const policy = await this.policies.get(token.keyName!);
    // Event Hubs clients (the built-in endpoint) sign with the key's text rather than its bytes.
    const matches = (key: string) => signatureMatches(token, key) || serviceBusSignatureMatches(token, key);
    if (!policy || !(matches(policy.primaryKey) || matches(policy.secondaryKey))) {
      throw errors.unauthorized('Unauthorized: the signature or policy name is not valid');
    }
    return { kind: 'policy', keyName: policy.keyName, rights: policy.rights, resource: token.resource };
  }

  /**
   * DeviceConnect for `resourcePath`, as `authorize` checks it; for a device or module token also
   * the identity record it was verified against, so that a connect reads the registry once.
   */
  async authorizeDeviceConnect(token: string, resourcePath: string): Promise<{ principal: Principal; record?: Device | Module }> {
    const sas = parseSasToken(token);
    if (!sas || sas.keyName !== undefined) return { principal: await this.authorize(token, 'DeviceConnect', resourcePath) };
    if (sas.expiry * 1000 <= this.now()) throw errors.unauthorized('SharedAccessSignature is expired');
    const host = this.hostOf(sas);
    if (!host) throw errors.unauthorized(`SharedAccessSignature audience '${sas.resource}' is not this hub`);
    if (!resourceCovers(sas.resource, host + resourcePath)) {
      throw errors.unauthorized(`SharedAccessSignature audience '${sas.resource}' does not cover '${host}${resourcePath}'`);
    }
    return this.devicePrincipal(sas, host);
  }

  private async devicePrincipal(token: SasToken, host: string): Promise<{ principal: Principal; record: Device | Module }> {
    const path = token.resource.replace(/^[a-z]+:\/\//i, '').replace(/^[^/]*/, '');
    const m = /^\/devices\/([^/]+)(?:\/modules\/([^/]+))?\/?$/i.exec(path);
    if (!m) throw errors.unauthorized('Unauthorized: a device token must be scoped to a device');
    const deviceId = m[1]!;
    const moduleId = m[2];
    const identity = moduleId ? await this.modules.get(deviceId, moduleId) : await this.devices.get(deviceId);
    if (!identity || !keyMatches(token, identity.authentication)) {
      throw errors.unauthorized('Unauthorized: the signature is not valid for this device');
    }
    return { principal: { kind: 'device', deviceId, moduleId, resource: token.resource }, record: identity };
  }
}

function keyMatches(token: SasToken, auth: Authentication): boolean {
  if (auth.type !== 'sas') return false;
  const { primaryKey, secondaryKey } = auth.symmetricKey;
  return (!!primaryKey && signatureMatches(token, primaryKey)) || (!!secondaryKey && signatureMatches(token, secondaryKey));
}

function grants(principal: Principal, permission: Permission): boolean {
  if (principal.kind === 'device') return permission === 'DeviceConnect';
  if (principal.kind === 'aad') return false;
  const rights = principal.rights;
  // RegistryWrite grants read access as well, as in IoT Hub.
  return rights.includes(permission) || (permission === 'RegistryRead' && rights.includes('RegistryWrite'));
}
