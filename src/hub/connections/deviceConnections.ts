import type { Logger } from 'pino';
import { HubError } from '../../core/errors.js';
import { parseSasToken } from '../../core/sas.js';
import type { Authorizer } from '../auth/authorizer.js';
import type { DeviceStore, ModuleStore } from '../../store/index.js';
import type { Authentication as IdentityAuthentication } from '../registry/types.js';

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
    try {
      const principal = await this.authorizer.authorize(token, 'DeviceConnect', resource);
      if (principal.kind === 'device') {
        // A token proves the identity named in its audience, and only that one.
        if (principal.deviceId !== deviceId || principal.moduleId !== moduleId) {
          return { refused: 'notAuthorized', reason: 'the token was signed for another identity' };
        }
        scope = moduleId ? 'module' : 'device';
      } else scope = 'hub';
    } catch (e) {
      if (e instanceof HubError) return { refused: 'notAuthorized', reason: e.message };
      throw e;
    }
    const result = await this.identity(deviceId, moduleId, { scope, type: 'sas', issuer: 'iothub' });
    if ('identity' in result) result.identity.expiresAt = parseSasToken(token)!.expiry * 1000;
    return result;
  }

  /** A TLS client certificate (leaf first), for a `selfSigned` or `certificateAuthority` identity. */
  async authenticateX509(deviceId: string, moduleId: string | undefined, chainDer: Buffer[]): Promise<Authentication> {
    const identity = moduleId ? await this.modules.get(deviceId, moduleId) : await this.devices.get(deviceId);
    if (!identity || !this.x509 || !(await this.x509.provesIdentity(chainDer, identity.authentication, moduleId ?? deviceId))) {
      return { refused: 'notAuthorized', reason: 'the client certificate does not authenticate this identity' };
    }
    return this.identity(deviceId, moduleId, { scope: moduleId ? 'module' : 'device', type: 'x509Certificate', issuer: 'iothub' });
  }

  /**
   * The identity behind an already-verified credential (an X.509 certificate the caller checked
   * against the device's thumbprints or a verified CA): exists, enabled.
   */
  async identity(deviceId: string, moduleId: string | undefined, authMethod: AuthMethod): Promise<Authentication> {
    const device = await this.devices.get(deviceId);
    if (!device) return { refused: 'notAuthorized', reason: `device ${deviceId} is not registered` };
    if (device.status !== 'enabled') return { refused: 'deviceDisabled', reason: `device ${deviceId} is disabled` };
    if (moduleId) {
      const module = await this.modules.get(deviceId, moduleId);
      if (!module) return { refused: 'notAuthorized', reason: `module ${moduleId} on device ${deviceId} is not registered` };
      return { identity: { deviceId, moduleId, generationId: module.generationId, authMethod } };
    }
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

    let lastActivityWrite = Date.now();
    let ended = false;
    return {
      activity: () => {
        const t = Date.now();
        if (ended || t - lastActivityWrite < ACTIVITY_WRITE_INTERVAL_MS) return;
        lastActivityWrite = t;
        void this.recordActivity(identity);
      },
      disconnected: () => {
        if (ended) return;
        ended = true;
        if (this.live.get(key) !== connection) return;
        this.live.delete(key);
        this.emitState(identity, 'Disconnected');
        void this.record(identity, 'Disconnected', false);
      },
    };
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
    try {
      if (identity.moduleId) {
        await this.modules.setConnectionState(identity.deviceId, identity.moduleId, state, at);
        if (activity) await this.modules.setLastActivity(identity.deviceId, identity.moduleId, at);
      } else {
        await this.devices.setConnectionState(identity.deviceId, state, at);
        if (activity) await this.devices.setLastActivity(identity.deviceId, at);
      }
    } catch (e) {
      this.logger.error({ err: e, deviceId: identity.deviceId, moduleId: identity.moduleId }, 'recording connection state failed');
    }
  }

  private async recordActivity(identity: ConnectedIdentity): Promise<void> {
    if (this.closed) return;
    const at = this.now().toISOString();
    try {
      if (identity.moduleId) await this.modules.setLastActivity(identity.deviceId, identity.moduleId, at);
      else await this.devices.setLastActivity(identity.deviceId, at);
    } catch (e) {
      this.logger.error({ err: e, deviceId: identity.deviceId }, 'recording activity failed');
    }
  }
}
