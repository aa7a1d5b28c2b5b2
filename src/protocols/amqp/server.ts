import { randomUUID } from 'node:crypto';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import rhea, { type Connection, type Container, type EventContext, type Receiver, type Sender } from 'rhea';
import type { Logger } from 'pino';
import type { Authorizer } from '../../hub/auth/authorizer.js';
import { CLIENT_CERTIFICATE_TLS_OPTIONS } from '../tls/peerChain.js';
import { ConnectionClaims } from './claims.js';
import { amqpError, amqpErrors, type AmqpError } from './errors.js';
import type { ClientConnection, LinkRoute } from './link.js';
import { UPGRADE_SOCKET_OPTION } from './peer.js';
import { saslPlain, tokenMechanisms } from './sasl.js';

export interface AmqpEndpointOptions {
  authorizer: Authorizer;
  routes: LinkRoute[];
  logger: Logger;
  /** The hub's host name: the container id it announces. */
  hostName: string;
  /** SASL PLAIN user names that are not hub identities (DPS registrations), checked by their owners. */
  plainUsers?: PlainUserFamily[];
  /** SASL mechanisms besides ANONYMOUS, PLAIN and EXTERNAL (DPS's TPM), by name. */
  saslMechanisms?: Record<string, () => unknown>;
}

/**
 * A family of SASL PLAIN user names owned by another service on this endpoint (DPS's
 * `{idScope}/registrations/{registrationId}`): its password is not a hub token, and the owner,
 * not the hub's authorizer, judges it when the connection opens.
 */
export interface PlainUserFamily {
  owns(username: string): boolean;
  /** The connection opened with such a user; resolves with the error to close it with, or undefined to keep it. */
  opened(connection: ClientConnection, username: string, password: string): Promise<AmqpError | undefined>;
}

/**
 * The AMQP 1.0 endpoint: one rhea container behind every listener (TLS 5671, the plain loopback
 * listener for the Event Hubs emulator connection string, WebSocket). Connections authenticate
 * with SASL (ANONYMOUS, PLAIN with a SAS token, EXTERNAL, plus the mechanisms and PLAIN users
 * other services bring: DPS's TPM and registrations) and `$cbs` put-token; each link the client
 * attaches goes to the family (LinkRoute) that owns its address, which authorizes it.
 */
export class AmqpEndpoint {
  private readonly container: Container;
  private readonly connections = new Map<Connection, ClientConnectionState>();
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();

  constructor(private readonly options: AmqpEndpointOptions) {
    // Nothing is accepted implicitly: a message is accepted only once what it asked for is committed.
    // No credit on a receiving link until its family has set it up (see route).
    const container = rhea.create_container({ id: options.hostName, autoaccept: false, credit_window: 0 } as never);
    this.container = container;
    Object.assign(container.sasl_server_mechanisms, tokenMechanisms(), options.saslMechanisms);
    container.on('connection_open', (context: EventContext) => void this.state(context.connection));
    container.on('sender_open', (context: EventContext) => this.route('send', context.sender!, context.connection));
    container.on('receiver_open', (context: EventContext) => this.route('receive', context.receiver!, context.connection));
    container.on('disconnected', (context: EventContext) => this.forget(context.connection));
    container.on('connection_close', (context: EventContext) => this.forget(context.connection));
    // rhea raises 'error' on the container for link and connection errors nobody else handled;
    // without a listener Node would treat them as fatal.
    container.on('error', (e: Error) => this.options.logger.debug({ err: e }, 'AMQP error'));
    // Malformed frames on WebSocket connections (TCP/TLS ones are answered in listen); without a
    // listener rhea would print to the console.
    container.on('protocol_error', (e: Error) => this.options.logger.debug({ err: e }, 'AMQP framing error'));
  }

  /** Listens for AMQPS (TLS) or plain AMQP; resolves with the bound port. */
  listen(options: { host: string; port: number; tls?: { key: string; cert: string } }): Promise<number> {
    const connectionOptions = {
      host: options.host,
      port: options.port,
      // X.509 devices present a client certificate; it is checked per identity at link attach,
      // so the handshake asks for one without requiring or verifying it.
      ...(options.tls ? { transport: 'tls' as const, key: options.tls.key, cert: options.tls.cert, ...CLIENT_CERTIFICATE_TLS_OPTIONS } : {}),
      container_id: this.options.hostName,
      idle_time_out: 240_000,
    };
    // Our own listener rather than container.listen, to hold each rhea Connection and answer a
    // malformed frame on it.
    const accept = (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      const connection = this.container.create_connection(connectionOptions as never);
      connection.on('protocol_error', (e: Error) => this.refuseMalformed(connection, e));
      // rhea reports bytes it cannot decode as 'error' when they are not a ProtocolError.
      connection.on('error', (e: Error) => this.refuseMalformed(connection, e));
      (connection as unknown as { accept(socket: Socket): void }).accept(socket);
    };
    const server: Server = options.tls
      ? createTlsServer(connectionOptions as TlsOptions).on('secureConnection', accept)
      : createNetServer().on('connection', accept);
    server.listen(options.port, options.host);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.once('listening', () => {
        server.off('error', reject);
        server.on('error', (e) => this.options.logger.warn({ err: e }, 'AMQP listener error'));
        this.servers.push(server);
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : options.port);
      });
    });
  }

  /** AMQP's way to refuse bad bytes: open (if not yet sent) then close with the error, written now, before rhea ends the socket. */
  private refuseMalformed(connection: Connection, e: Error): void {
    this.options.logger.debug({ err: e }, 'AMQP framing error');
    const raw = connection as unknown as { open(): void; _process(): void; output(): void; is_closed(): boolean; is_open(): boolean };
    try {
      if (raw.is_closed()) return;
      if (!raw.is_open()) raw.open();
      connection.close({ condition: 'amqp:connection:framing-error', description: 'Malformed AMQP frame' });
      raw._process();
      raw.output();
    } catch {
      // the socket is going away regardless
    }
  }

  /**
   * Accepts an AMQP-over-WebSocket connection (subprotocol AMQPWSB10); `upgradeSocket` is the
   * socket of the HTTP upgrade, whose TLS client certificate (if any) the connection then carries.
   */
  acceptWebSocket(socket: unknown, upgradeSocket?: unknown): void {
    const options = { container_id: this.options.hostName, idle_time_out: 240_000, [UPGRADE_SOCKET_OPTION]: upgradeSocket };
    this.container.websocket_accept(socket as never, options as never);
  }

  async close(): Promise<void> {
    const closing = Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    for (const c of this.connections.keys()) {
      try {
        c.close();
      } catch {
        // already gone
      }
    }
    // A grace period for the close handshake, then whatever is left (silent or half-open peers)
    // is cut, so that stopping the hub never waits on a client.
    await Promise.race([closing, new Promise((r) => setTimeout(r, 500).unref())]);
    for (const socket of this.sockets) socket.destroy();
    await closing;
    for (const c of [...this.connections.keys()]) this.forget(c);
  }

  private state(connection: Connection): ClientConnectionState {
    let state = this.connections.get(connection);
    if (!state) {
      state = new ClientConnectionState(connection, new ConnectionClaims(this.options.authorizer), this.options.logger);
      this.connections.set(connection, state);
      const plain = saslPlain(connection);
      const owner = plain && this.options.plainUsers?.find((f) => f.owns(plain.username));
      if (plain && owner) {
        void owner.opened(state, plain.username, plain.token).then(
          (refusal) => refusal && connection.close(refusal),
          (e) => connection.close(amqpError(e)),
        );
      } else if (plain) {
        // SASL PLAIN already validated the token; record it as if it had been put on $cbs.
        void state.claims.put(undefined, plain.token).catch(() => connection.close(amqpErrors.unauthorized('Invalid SASL token')));
      }
    }
    return state;
  }

  private forget(connection: Connection): void {
    const state = this.connections.get(connection);
    if (!state) return;
    this.connections.delete(connection);
    state.closed();
  }

  private route(role: 'send' | 'receive', link: Sender | Receiver, connection: Connection): void {
    const terminus = (role === 'send' ? link.source : link.target) as { address?: string } | undefined;
    const address = terminus?.address ?? '';
    const state = this.state(connection);
    for (const route of this.options.routes) {
      if (route.role !== role) continue;
      if (route.accepts && !route.accepts(state)) continue;
      const match = route.address.exec(address);
      if (!match) continue;
      Promise.resolve(route.open({ connection: state, link, address }, match)).then(
        () => {
          if (role === 'receive') grantCredit(link as Receiver);
        },
        (e) => {
          state.logger.debug({ err: e, address }, 'AMQP link setup failed');
          if (!link.is_closed()) link.close({ condition: 'amqp:internal-error', description: 'Link setup failed' });
        },
      );
      return;
    }
    link.close(amqpErrors.notFound(`The ${role === 'send' ? 'source' : 'target'} address '${address}' does not exist`));
  }
}

/** Credit each receiving link keeps topped up (rhea's default window). */
const RECEIVE_CREDIT = 1000;

/**
 * Opens a receiving link's flow once its family has authorized it and listens for its messages,
 * as IoT Hub does: credit given with the attach would let a client send before the family
 * listens, and that delivery would never be settled (the client waits for it forever). A link
 * the family refused, or the client detached meanwhile, gets none.
 */
function grantCredit(link: Receiver): void {
  if (!link.is_open()) return;
  link.set_credit_window(RECEIVE_CREDIT);
  link.add_credit(RECEIVE_CREDIT);
}

class ClientConnectionState implements ClientConnection {
  readonly id = randomUUID();
  private readonly closeListeners: (() => void)[] = [];

  constructor(
    readonly rhea: Connection,
    readonly claims: ConnectionClaims,
    readonly logger: Logger,
  ) {}

  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  closed(): void {
    this.claims.close();
    for (const l of this.closeListeners.splice(0)) {
      try {
        l();
      } catch (e) {
        this.logger.warn({ err: e }, 'AMQP connection close listener failed');
      }
    }
  }
}
