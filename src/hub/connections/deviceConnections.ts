import type { Logger } from 'pino';
import { HubError } from '../../core/errors.js';
import { parseSasToken } from '../../core/sas.js';
import type { Authorizer } from '../auth/authorizer.js';
import type { DeviceConnectionRecord, DeviceStore, ModuleStore } from '../../store/index.js';
import type { Authentication as IdentityAuthentication, Device, Module } from '../registry/types.js';

/** Checks an X.509 client certificate chain against an identity's registered authentication. */
export interface X509Verifier {
  provesIdentity(chainDer: Buffer[], authentication: IdentityAuthentication, id: string): Promise<boolean>;
}

/** How a connection authenticated, as IoT Hub stamps it on messages (`iothub-connection-auth-method`). */
export interface AuthMethod {
  scope: 'device' | 'module' | 'hub';
  type: 'sas' | 'x509Certificate';
  issuer: 'iothub' | 'external';
}

/** A device or module identity that authenticated on some protocol. */
export interface ConnectedIdentity {
  deviceId: string;
  moduleId?: string;
  generationId: string;
  authMethod: AuthMethod;
  /** When the credential expires (ms since the epoch): IoT Hub closes the connection then. */
  expiresAt?: number;
}

/**
 * Why a connection is refused; each protocol maps it to its own form (MQTT CONNACK codes):
 * credentials that do not prove the identity, an unknown identity, a disabled device.
 */
export type Refusal = 'badCredentials' | 'notAuthorized' | 'deviceDisabled';

export type Authentication = { identity: ConnectedIdentity } | { refused: Refusal; reason: string };

export interface ConnectionHandle {
  /** Records device activity (lastActivityTime), throttled. */
  activity(): void;
  /** The connection ended; records Disconnected unless a newer connection took over. */
  disconnected(): void;
}

/** An identity's connection state changed: it connected, or its live connection ended. */
export interface ConnectionStateChange {
  deviceId: string;
  moduleId?: string;
  state: 'Connected' | 'Disconnected';
  at: Date;
}

type ConnectionStateListener = (change: ConnectionStateChange) => void;

/** lastActivityTime is written at most this often per connection: it is a coarse signal in IoT Hub too. */
const ACTIVITY_WRITE_INTERVAL_MS = 5000;

interface Live {
  close(reason: string): void;
}

/**
 * Device connections, whatever the protocol: authenticates identities, keeps one live connection
 * per identity (a newer one closes the older, as IoT Hub does), and records connectionState,
 * connectionStateUpdatedTime and lastActivityTime on the device or module.
 */
export class DeviceConnections {
  private readonly live = new Map<string, Live>();
  private readonly stateListeners = new Set<ConnectionStateListener>();
  private closed = false;
  private readonly pendingRecords: DeviceConnectionRecord[] = [];
  private readonly pendingDone: (() => void)[] = [];

  constructor(
    private readonly authorizer: Authorizer,
    private readonly devices: DeviceStore,
    private readonly modules: ModuleStore,
    private readonly logger: Logger,
    private readonly x509?: X509Verifier,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Each connect of an identity, and each end of its live connection (not of one that a newer
   * connection replaced), told synchronously in the order they happen. Listeners must not throw.
   */
  onConnectionStateChange(listener: ConnectionStateListener): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Connections from a previous run are gone; say so in the registry. */
  async start(): Promise<void> {
    await this.devices.disconnectAll(this.now().toISOString());
  }

  /** A shared access signature: signed with the device's/module's key, or a policy token granting DeviceConnect. */
  async authenticateSas(deviceId: string, moduleId: string | undefined, token: string): Promise<Authentication> {
    const resource = `/devices/${deviceId}` + (moduleId ? `/modules/${moduleId}` : '');
    let scope: AuthMethod['scope'];
    let record: Device | Module | undefined;
    try {
      const authorized = await this.authorizer.authorizeDeviceConnect(token, resource);
      const principal = authorized.principal;
      if (principal.kind === 'device') {
        // A token proves the identity named in its audience, and only that one.
        if (principal.deviceId !== deviceId || principal.moduleId !== moduleId) {
          return { refused: 'notAuthorized', reason: 'the token was signed for another identity' };
        }
        scope = moduleId ? 'module' : 'device';
        record = authorized.record;
      } else scope = 'hub';
    } catch (e) {
      if (e instanceof HubError) return { refused: 'notAuthorized', reason: e.message };
      throw e;
    }
    // A device's own token was verified against its record just now: no second read.
    const result =
      record && !moduleId
        ? this.deviceIdentity(deviceId, record as Device, { scope, type: 'sas', issuer: 'iothub' })
        : await this.identity(deviceId, moduleId, { scope, type: 'sas', issuer: 'iothub' });
    if ('identity' in result) result.identity.expiresAt = parseSasToken(token)!.expiry * 1000;
    return result;
  }

  /** A TLS client certificate (leaf first), for a `selfSigned` or `certificateAuthority` identity. */
  async authenticateX509(deviceId: string, moduleId: string | undefined, chainDer: Buffer[]): Promise<Authentication> {
    const identity = moduleId ? await this.modules.get(deviceId, moduleId) : await this.devices.get(deviceId);
    if (!identity || !this.x509 || !(await this.x509.provesIdentity(chainDer, identity.authentication, moduleId ?? deviceId))) {
      return { refused: 'notAuthorized', reason: 'the client certificate does not authenticate this identity' };
    }
    if (!moduleId) return this.deviceIdentity(deviceId, identity as Device, { scope: 'device', type: 'x509Certificate', issuer: 'iothub' });
    return this.identity(deviceId, moduleId, { scope: moduleId ? 'module' : 'device', type: 'x509Certificate', issuer: 'iothub' });
  }

  /**
   * The identity behind an already-verified credential (an X.509 certificate the caller checked
   * against the device's thumbprints or a verified CA): exists, enabled.
   */
  async identity(deviceId: string, moduleId: string | undefined, authMethod: AuthMethod): Promise<Authentication> {
    const device = await this.devices.get(deviceId);
    if (!device) return { refused: 'notAuthorized', reason: `device ${deviceId} is not registered` };
    if (!moduleId) return this.deviceIdentity(deviceId, device, authMethod);
    if (device.status !== 'enabled') return { refused: 'deviceDisabled', reason: `device ${deviceId} is disabled` };
    const module = await this.modules.get(deviceId, moduleId);
    if (!module) return { refused: 'notAuthorized', reason: `module ${moduleId} on device ${deviceId} is not registered` };
    return { identity: { deviceId, moduleId, generationId: module.generationId, authMethod } };
  }

  /** A device identity (not a module) from its registry record: enabled or refused. */
  private deviceIdentity(deviceId: string, device: Device, authMethod: AuthMethod): Authentication {
    if (device.status !== 'enabled') return { refused: 'deviceDisabled', reason: `device ${deviceId} is disabled` };
    return { identity: { deviceId, generationId: device.generationId, authMethod } };
  }

  /** Registers a live connection; closes an older one of the same identity. */
  async connected(identity: ConnectedIdentity, connection: Live): Promise<ConnectionHandle> {
    const key = identity.moduleId ? `${identity.deviceId}/${identity.moduleId}` : identity.deviceId;
    const previous = this.live.get(key);
    this.live.set(key, connection);
    previous?.close('another connection with the same identity replaced this one');
    this.emitState(identity, 'Connected');
    await this.record(identity, 'Connected', true);
    return new LiveHandle(this, identity, key, connection);
  }

  /** LiveHandle: the connection under `key` ended. */
  ended(identity: ConnectedIdentity, key: string, connection: Live): void {
    if (this.live.get(key) !== connection) return;
    this.live.delete(key);
    this.emitState(identity, 'Disconnected');
    void this.record(identity, 'Disconnected', false);
  }

  /** Closes the live connections of a device and its modules (or of one module): the identity was disabled or deleted. */
  closeIdentity(deviceId: string, moduleId: string | undefined, reason: string): void {
    for (const [key, connection] of [...this.live]) {
      const match = moduleId ? key === `${deviceId}/${moduleId}` : key === deviceId || key.startsWith(`${deviceId}/`);
      if (match) connection.close(reason);
    }
  }

  /** Closes every live connection (hub shutdown), records them Disconnected, and records nothing after. */
  async closeAll(reason: string): Promise<void> {
    const connections = [...this.live.values()];
    const identities = [...this.live.keys()];
    this.live.clear();
    for (const c of connections) c.close(reason);
    for (const key of identities) {
      const [deviceId, moduleId] = key.split('/');
      this.emitState({ deviceId: deviceId!, moduleId }, 'Disconnected');
    }
    // Writes still queued land before the final Disconnected, not after it.
    await this.flushDeviceRecords();
    await this.devices.disconnectAll(this.now().toISOString());
    this.closed = true;
  }

  private emitState(identity: Pick<ConnectedIdentity, 'deviceId' | 'moduleId'>, state: ConnectionStateChange['state']): void {
    if (this.closed) return;
    const change: ConnectionStateChange = { deviceId: identity.deviceId, ...(identity.moduleId ? { moduleId: identity.moduleId } : {}), state, at: this.now() };
    for (const listener of this.stateListeners) {
      try {
        listener(change);
      } catch (e) {
        this.logger.error({ err: e, deviceId: identity.deviceId }, 'a connection state listener failed');
      }
    }
  }

  private async record(identity: ConnectedIdentity, state: 'Connected' | 'Disconnected', activity: boolean): Promise<void> {
    if (this.closed) return;
    const at = this.now().toISOString();
    if (!identity.moduleId) return this.recordDevice({ deviceId: identity.deviceId, state, activity, at });
    try {
      await this.modules.setConnectionState(identity.deviceId, identity.moduleId, state, at);
      if (activity) await this.modules.setLastActivity(identity.deviceId, identity.moduleId, at);
    } catch (e) {
      this.logger.error({ err: e, deviceId: identity.deviceId, moduleId: identity.moduleId }, 'recording connection state failed');
    }
  }

  /** LiveHandle: activity on a live connection (throttled by the handle). */
  async recordActivity(identity: ConnectedIdentity): Promise<void> {
    if (this.closed) return;
    const at = this.now().toISOString();
    if (!identity.moduleId) return this.recordDevice({ deviceId: identity.deviceId, activity: true, at });
    try {
      await this.modules.setLastActivity(identity.deviceId, identity.moduleId, at);
    } catch (e) {
      this.logger.error({ err: e, deviceId: identity.deviceId }, 'recording activity failed');
    }
  }

  /**
   * Devices' connection records wait for the end of the event-loop turn and commit together: a
   * connect storm costs one transaction per turn, not two per device. Resolves once committed
   * (the CONNACK waits for it, so a device reads as Connected as soon as it is told it is).
   */
  private recordDevice(change: DeviceConnectionRecord): Promise<void> {
    return new Promise((resolve) => {
      this.pendingRecords.push(change);
      this.pendingDone.push(resolve);
      if (this.pendingRecords.length === 1) setImmediate(() => void this.flushDeviceRecords());
    });
  }

  private async flushDeviceRecords(): Promise<void> {
    if (this.pendingRecords.length === 0) return;
    const changes = this.pendingRecords.splice(0);
    const done = this.pendingDone.splice(0);
    try {
      await this.devices.recordConnections(changes);
    } catch (e) {
      this.logger.error({ err: e, devices: changes.length }, 'recording connection state failed');
    }
    for (const resolve of done) resolve();
  }
}

/** What a live connection holds of its registration: one small object, no closures. */
class LiveHandle implements ConnectionHandle {
  private lastActivityWrite = Date.now();
  private ended = false;

  constructor(
    private readonly owner: DeviceConnections,
    private readonly identity: ConnectedIdentity,
    private readonly key: string,
    private readonly connection: Live,
  ) {}

  activity(): void {
    if (this.ended) return;
    const t = Date.now();
    if (t - this.lastActivityWrite < ACTIVITY_WRITE_INTERVAL_MS) return;
    this.lastActivityWrite = t;
    void this.owner.recordActivity(this.identity);
  }

  disconnected(): void {
    if (this.ended) return;
    this.ended = true;
    this.owner.ended(this.identity, this.key, this.connection);
  }
}
