import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import rhea, { type Connection, type Container, type EventContext, type Receiver, type Sender } from 'rhea';
import type { Logger } from 'pino';
import type { Authorizer } from '../../hub/auth/authorizer.js';
import { ConnectionClaims } from './claims.js';
import { guardConnection, guardRhea } from './peerGuards.js';
import { pooledRheaWriters } from './rheaWriter.js';
import { amqpError, amqpErrors, type AmqpError } from './errors.js';
import type { ClientConnection, LinkRoute } from './link.js';
import { UPGRADE_SOCKET_OPTION } from './peer.js';
import { saslPlain, tokenMechanisms } from './sasl.js';
import { limitWriteBuffer, type WriteBufferLimits } from '../backPressure.js';
import { upgradeFailureCounter } from '../addressFailures.js';
import { PacketRate } from '../packetRate.js';
import { paceInput } from './inputPacing.js';

/** rhea's adapter from a `ws` WebSocket to the transport a connection reads and writes. */
const wrapWebSocket = (createRequire(import.meta.url)('rhea/lib/ws.js') as { wrap(ws: WebSocket): unknown }).wrap;

/** The connection option under which a WebSocket connection keeps the hub its HTTP request was for. */
const HUB_OPTION = 'fleethub_hub';

/** What one hub brings to the AMQP endpoint of its address: who authenticates, and its link families. */
export interface AmqpHub {
  hubName: string;
  authorizer: Authorizer;
  routes: LinkRoute[];
  /** SASL PLAIN user names that are not hub identities (DPS registrations), checked by their owners. */
  plainUsers?: PlainUserFamily[];
  /** SASL mechanisms besides ANONYMOUS, PLAIN and EXTERNAL (DPS's TPM), by name. */
  saslMechanisms?: Record<string, () => unknown>;
}

export interface AmqpEndpointOptions {
  logger: Logger;
  /** The container id announced: the host name of the address's default hub. */
  hostName: string;
  /**
   * The hub a connection is for, from the name it gave (TLS SNI, else the AMQP open frame's
   * hostname; undefined when it gave none); undefined when no hub here has that name.
   */
  hubFor(name: string | undefined): AmqpHub | undefined;
  /** A TCP/TLS connection that has not opened (protocol header, SASL, open frame) by then is cut. */
  connectTimeoutMs?: number;
  /** What a peer that does not read may leave unsent (config `connections.writeBuffer*`). */
  writeBuffer?: WriteBufferLimits;
  /** Config `connections.packetsPerConnectionTurn`: the most frames of one TLS or TCP connection rhea is handed in one event-loop turn (src/protocols/amqp/inputPacing.ts); absent: all it reads. */
  framesPerConnectionTurn?: number;
  /** Config `connections.packetsPerConnectionSecond`: the most messages a second one connection's paced links (device telemetry) are given credit for; 0 or absent: no ceiling. */
  packetsPerConnectionSecond?: number;
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
 * The AMQP 1.0 endpoint of one address: one rhea container behind its listeners (TLS 5671, the
 * plain loopback listener for the Event Hubs emulator connection string, WebSocket), shared by
 * the hubs served there. Each connection belongs to one hub, told by TLS SNI, or the open frame's
 * hostname when TLS gave none (a WebSocket connection: the hub its HTTP request went to).
 * Connections authenticate with SASL (ANONYMOUS, PLAIN with a SAS token, EXTERNAL, plus the
 * mechanisms and PLAIN users other services bring: DPS's TPM and registrations) and `$cbs`
 * put-token; each link the client attaches goes to the family (LinkRoute) of the connection's hub
 * that owns its address, which authorizes it.
 */
export class AmqpEndpoint {
  private readonly container: Container;
  private readonly connections = new Map<Connection, ClientConnectionState>();
  /** The hub (WebSocket) or the TLS server name a connection came with, before it opened. */
  private readonly given = new WeakMap<Connection, { hub?: AmqpHub; name?: string }>();
  private readonly refused = new WeakSet<Connection>();
  /** Counts a connection against its address's failures (malformed frames, no open in time, a bad SASL token). */
  private readonly failedOf = new WeakMap<Connection, () => void>();
  /** Connections on TCP/TLS sockets not yet closed, opened or not (close cuts them all). */
  private readonly accepted = new Set<Connection>();

  constructor(private readonly options: AmqpEndpointOptions) {
    // Nothing is accepted implicitly: a message is accepted only once what it asked for is committed.
    // No credit on a receiving link until its family has set it up (see route).
    guardRhea();
    pooledRheaWriters();
    const container = rhea.create_container({ id: options.hostName, autoaccept: false, credit_window: 0 } as never);
    this.container = container;
    Object.assign(container.sasl_server_mechanisms, tokenMechanisms());
    container.on('connection_open', (context: EventContext) => void this.state(context.connection));
    container.on('sender_open', (context: EventContext) => this.route('send', context.sender!, context.connection));
    container.on('receiver_open', (context: EventContext) => this.route('receive', context.receiver!, context.connection));
    container.on('disconnected', (context: EventContext) => this.forget(context.connection));
    container.on('connection_close', (context: EventContext) => this.forget(context.connection));
    // rhea raises 'error' on the container for link and connection errors nobody else handled;
    // without a listener Node would treat them as fatal.
    container.on('error', (e: Error) => this.options.logger.debug({ err: e }, 'AMQP error'));
    // Malformed frames on connections nobody watches (each accepted one is answered in watch);
    // without a listener rhea would print to the console.
    container.on('protocol_error', (e: Error) => this.options.logger.debug({ err: e }, 'AMQP framing error'));
  }

  /** A hub served here: its SASL mechanisms join the container's. */
  attach(hub: AmqpHub): void {
    Object.assign(this.container.sasl_server_mechanisms, hub.saslMechanisms);
  }

  /**
   * A connection on an AMQPS (TLS, handshake done) or plain AMQP listener. `serverName`: the TLS
   * SNI it gave, which names its hub; without one, the open frame's hostname does. `failed` counts
   * the connection against its address when it proves to be garbage or brings a bad SASL token.
   */
  acceptSocket(socket: Socket, serverName?: string, failed?: () => void): void {
    const tls = 'encrypted' in socket;
    // tcp_no_delay: without it Nagle holds each small frame (a disposition, one transfer) until the
    // peer's delayed ACK, tens of milliseconds per round trip of a request-response pattern.
    const connection = this.container.create_connection({ container_id: this.options.hostName, idle_time_out: 240_000, tcp_no_delay: true, ...(tls ? { transport: 'tls' } : {}) } as never);
    this.given.set(connection, serverName ? { name: serverName } : {});
    coalesceWrites(socket);
    if (this.options.writeBuffer) limitWriteBuffer(socket, this.options.writeBuffer);
    if (this.options.framesPerConnectionTurn) paceInput(connection as unknown as Parameters<typeof paceInput>[0], socket, this.options.framesPerConnectionTurn);
    this.watch(connection, failed, () => socket.destroy(), (closed) => socket.once('close', closed));
    (connection as unknown as { accept(socket: Socket): void }).accept(socket);
  }

  /**
   * What every accepted connection gets, over TCP/TLS or WebSocket: malformed frames are answered
   * and counted against the peer's address (`failed`), as is a connection that has not opened
   * within the connect timeout (then cut with `destroy`).
   */
  private watch(connection: Connection, failed: (() => void) | undefined, destroy: () => void, onClose: (closed: () => void) => void): void {
    if (failed) this.failedOf.set(connection, failed);
    guardConnection(connection);
    connection.on('protocol_error', (e: Error) => this.refuseMalformed(connection, e));
    // rhea reports bytes it cannot decode as 'error' when they are not a ProtocolError.
    connection.on('error', (e: Error) => this.refuseMalformed(connection, e));
    this.accepted.add(connection);
    const opening = this.options.connectTimeoutMs
      ? setTimeout(() => {
          if (connection.is_remote_open()) return;
          failed?.();
          destroy();
        }, this.options.connectTimeoutMs).unref()
      : undefined;
    onClose(() => {
      clearTimeout(opening);
      this.accepted.delete(connection);
    });
  }

  /** AMQP's way to refuse bad bytes: open (if not yet sent) then close with the error, written now, before rhea ends the socket. */
  private refuseMalformed(connection: Connection, e: Error): void {
    this.options.logger.debug({ err: e }, 'AMQP framing error');
    this.failedOf.get(connection)?.();
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
   * Accepts an AMQP-over-WebSocket connection (subprotocol AMQPWSB10) for `hub`; `upgradeSocket` is
   * the socket of the HTTP upgrade, whose TLS client certificate (if any) the connection then carries.
   */
  acceptWebSocket(socket: WebSocket, upgradeSocket: Socket, hub: AmqpHub): void {
    const options = { container_id: this.options.hostName, idle_time_out: 240_000, [UPGRADE_SOCKET_OPTION]: upgradeSocket, [HUB_OPTION]: hub };
    // As rhea's container.websocket_accept does, with the same watch as a TLS connection: a bad peer
    // counts against the address of the HTTPS connection it upgraded.
    const connection = this.container.create_connection(options as never);
    this.watch(connection, upgradeFailureCounter(upgradeSocket), () => upgradeSocket.destroy(), (closed) => socket.once('close', closed));
    (connection as unknown as { accept(transport: unknown): void }).accept(wrapWebSocket(socket));
  }

  /** Closes `hub`'s connections (all of them without one), cutting those that do not close within a grace period. */
  async close(hub?: AmqpHub): Promise<void> {
    const mine = hub ? [...this.connections].filter(([, state]) => state.hub === hub).map(([c]) => c) : [...new Set([...this.connections.keys(), ...this.accepted])];
    for (const c of mine) {
      try {
        c.close();
      } catch {
        // already gone
      }
    }
    // A grace period for the close handshake, then whatever is left (silent or half-open peers)
    // is cut, so that stopping the hub never waits on a client.
    const socketOf = (c: Connection) => (c as unknown as { socket?: { destroyed?: boolean } }).socket;
    const open = (c: Connection) => (socketOf(c)?.destroyed === undefined ? this.connections.has(c) : !socketOf(c)!.destroyed);
    const deadline = Date.now() + 500;
    while (mine.some(open) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of mine) {
      // rhea's own abort: ends and destroys the socket and clears its heartbeat timers.
      if (open(c)) (c as unknown as { abort_socket(socket: unknown): void }).abort_socket(socketOf(c));
      this.forget(c);
    }
  }

  private state(connection: Connection): ClientConnectionState | undefined {
    let state = this.connections.get(connection);
    if (state || this.refused.has(connection)) return state;
    const given = this.given.get(connection) ?? { hub: (connection as unknown as { options?: Record<string, AmqpHub | undefined> }).options?.[HUB_OPTION] };
    const name = given.name ?? (connection as unknown as { remote?: { open?: { hostname?: string } } }).remote?.open?.hostname;
    const hub = given.hub ?? this.options.hubFor(name);
    if (!hub) {
      this.refused.add(connection);
      connection.close(amqpErrors.notFound(`No IoT hub named '${name}' is served here`));
      return undefined;
    }
    state = new ClientConnectionState(
      connection,
      hub,
      new ConnectionClaims(hub.authorizer),
      this.options.logger,
      () => this.failedOf.get(connection)?.(),
      this.options.packetsPerConnectionSecond,
    );
    this.connections.set(connection, state);
    const plain = saslPlain(connection);
    const owner = plain && hub.plainUsers?.find((f) => f.owns(plain.username));
    if (plain && owner) {
      void owner.opened(state, plain.username, plain.token).then(
        (refusal) => refusal && connection.close(refusal),
        (e) => connection.close(amqpError(e)),
      );
    } else if (plain) {
      // SASL PLAIN already validated the token; record it as if it had been put on $cbs.
      void state.claims.put(undefined, plain.token).catch(() => {
        state.refusedCredentials();
        connection.close(amqpErrors.unauthorized('Invalid SASL token'));
      });
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
    if (!state) return;
    for (const route of state.hub.routes) {
      if (route.role !== role) continue;
      if (route.accepts && !route.accepts(state)) continue;
      const match = route.address.exec(address);
      if (!match) continue;
      Promise.resolve(route.open({ connection: state, link, address }, match)).then(
        () => {
          if (role === 'receive') grantCredit(link as Receiver, route.pacedCredit ? state.rate : undefined);
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
function grantCredit(link: Receiver, rate?: PacketRate): void {
  if (!link.is_open()) return;
  if (rate) return grantPacedCredit(link, rate);
  link.set_credit_window(RECEIVE_CREDIT);
  link.add_credit(RECEIVE_CREDIT);
}

/**
 * The same window, topped up as rhea's is (once a quarter of it is used), but never faster than
 * the connection's rate allows (PacketRate, config `connections.packetsPerConnectionSecond`): the
 * rest of a top-up waits for the rate, and the peer, without credit, waits with it. AMQP's own
 * flow control, as MQTT's ceiling is TCP's: nothing refused. rhea's window tops up on receipt, so
 * without this a device could send telemetry as fast as the hub reads, as the MQTT flood did.
 */
function grantPacedCredit(link: Receiver, rate: PacketRate): void {
  let waiting: NodeJS.Timeout | undefined;
  const topUp = () => {
    if (waiting !== undefined || !link.is_open()) return;
    // rhea keeps the link's outstanding credit in `credit` (untyped).
    const deficit = RECEIVE_CREDIT - (link as unknown as { credit: number }).credit;
    if (deficit < RECEIVE_CREDIT / 4) return;
    let n = 0;
    while (n < deficit && rate.wait() === 0) {
      rate.spend();
      n++;
    }
    if (n > 0) link.add_credit(n);
    if (n < deficit) {
      // At least 10 ms: the bucket then holds a full 10 ms of credit, one flow frame for it.
      waiting = setTimeout(
        () => {
          waiting = undefined;
          topUp();
        },
        Math.max(PACED_TOP_UP_MS, Math.ceil(rate.wait())),
      );
    }
  };
  link.on('message', topUp);
  link.add_credit(RECEIVE_CREDIT);
}

/** The shortest wait between two top-ups of a paced link's credit. */
const PACED_TOP_UP_MS = 10;

class ClientConnectionState implements ClientConnection {
  readonly id = randomUUID();
  private readonly closeListeners: (() => void)[] = [];
  /** Shared by the connection's paced links (device telemetry), made when the first needs it. */
  private packetRate?: PacketRate;

  constructor(
    readonly rhea: Connection,
    readonly hub: AmqpHub,
    readonly claims: ConnectionClaims,
    readonly logger: Logger,
    readonly refusedCredentials: () => void,
    private readonly packetsPerSecond: number | undefined,
  ) {}

  /** The connection's ceiling for its paced links; undefined when the hub sets none. */
  get rate(): PacketRate | undefined {
    if (!this.packetsPerSecond) return undefined;
    return (this.packetRate ??= new PacketRate(this.packetsPerSecond));
  }

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

/**
 * rhea writes every frame with a socket.write of its own: a receiver link sending a batch of 500
 * events made 500 write syscalls (and, over TLS, 500 records). The frames one turn of the event
 * loop writes to a connection go out together instead: the first write corks the socket and the
 * uncork, queued behind rhea's own nextTick processing, flushes them as one writev. Nothing waits
 * longer than the current turn; end() flushes a corked socket.
 */
export function coalesceWrites(socket: Socket): void {
  const write = socket.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: Socket, ...args: unknown[]) {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as Socket['write'];
}

