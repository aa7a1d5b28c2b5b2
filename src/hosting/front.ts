import { randomUUID } from 'node:crypto';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createNetServer, isIP, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { AmqpEndpoint, type AmqpHub } from '../protocols/amqp/server.js';
import type { MqttSessions } from '../protocols/mqtt/server.js';
import { CLIENT_CERTIFICATE_TLS_OPTIONS } from '../protocols/tls/peerChain.js';
import { defaults, type ConnectionsConfig } from '../config/index.js';
import { AddressFailures, countUpgradeFailures } from '../protocols/addressFailures.js';

export const FALLBACK_HTTPS_PORT = 8443;

import { StartupError } from '../core/startupError.js';
export { StartupError };


/** A local Event Hubs or Service Bus namespace's host name, as Azure's `{namespace}.servicebus.windows.net`. */
const NAMESPACE_HOST = /^[a-z][a-z0-9-]*\.servicebus\./i;
/** What a hub gives the listeners of its address: its names, its certificate, and where each protocol's connections go. */
export interface HubEndpoints {
  hubName: string;
  /** The host names it answers to (TLS SNI, HTTP Host, AMQP hostname). */
  hostNames: string[];
  tls: { key: string; cert: string };
  /** Its HTTP application's server, which never listens: requests and upgrades are emitted on it. */
  http: HttpServer;
  mqtt: MqttSessions;
  amqp: AmqpHub;
}

export interface FrontOptions {
  bind: string;
  ports: { https: number | 'auto'; mqtt: number; amqp: number; amqpEmulator: number };
  /** The address's default hub, for clients that name none (or an IP address), and its host name (the AMQP container id). */
  defaultHub: { hubName: string; hostName: string };
  logger: Logger;
  /** Handshake and first-request timeouts, write-buffer limits (config `connections`). */
  connections?: ConnectionsConfig;
}

interface Attached extends HubEndpoints {
  secureContext: SecureContext;
}

/**
 * The listeners of one address, as Azure's front ends are for many hubs: HTTPS (with MQTT and
 * AMQP over WebSocket), MQTTS, AMQPS and plain AMQP for the Event Hubs emulator connection string.
 * Each connection goes to the hub its TLS server name (SNI) names, presenting that hub's
 * certificate; without SNI, an HTTP request goes by its Host header and an AMQP connection by its
 * open frame's hostname. No name, or an IP address, means the address's default hub. A name no
 * hub here has: TLS completes with the default certificate, then HTTP answers 404
 * IotHubNotFound, AMQP closes with amqp:not-found and MQTT closes the connection.
 */
export class Front {
  private readonly hubs = new Map<string, Attached>();
  private defaultHub?: Attached;
  private readonly sockets = new Set<Socket>();
  private readonly servers: Server[] = [];
  readonly amqp: AmqpEndpoint;
  private readonly https: HttpsServer;
  private readonly mqtts: Server;
  private readonly amqps: Server;
  /** Failed connections per remote address; an address with too many is refused for a while. */
  readonly failures: AddressFailures;
  ports = { https: 0, mqtt: 0, amqp: 0, amqpEmulator: 0 };

  private constructor(private readonly options: FrontOptions) {
    const logger = options.logger;
    const limits = { ...defaults.connections, ...options.connections };
    this.failures = new AddressFailures(
      { failures: limits.addressFailureLimit, windowMs: limits.addressFailureWindowMs, blockMs: limits.addressBlockMs },
      (address, failures) => logger.warn({ address, failures, blockMs: limits.addressBlockMs }, 'connections from this address are refused for a while: too many failed connections (TLS, garbage, bad credentials)'),
    );
    // Counts `socket` against its address, once however many of its faults are noticed (MQTT
    // garbage is seen by the first-bytes check and by the parser). A TLS socket whose peer reset it
    // mid-handshake no longer knows its address; the TCP socket under it (read at accept, which
    // caches it) still does.
    const counters = new WeakMap<Socket, () => void>();
    const failureOf = (socket: Socket) => {
      let counter = counters.get(socket);
      if (!counter) {
        const address = socket.remoteAddress ?? (socket as { _parent?: Socket })._parent?.remoteAddress;
        let counted = false;
        counter = () => {
          if (!counted) this.failures.failed(address);
          counted = true;
        };
        counters.set(socket, counter);
      }
      return counter;
    };
    const tlsOptions = {
      // Node's default is two minutes: long enough for a few thousand stalled sockets to pile up.
      handshakeTimeout: limits.handshakeTimeoutMs,
      // Devices may authenticate with a client certificate; it is verified against the registry
      // or DPS, not against a trust store, so the handshake asks for one and accepts any.
      ...CLIENT_CERTIFICATE_TLS_OPTIONS,
      SNICallback: (name: string, done: (e: Error | null, context?: SecureContext) => void) => done(null, (this.hubFor(name) ?? this.defaultHub)?.secureContext),
    };
    this.amqp = new AmqpEndpoint({
      logger,
      hostName: options.defaultHub.hostName,
      hubFor: (name) => this.hubFor(name)?.amqp,
      connectTimeoutMs: limits.connectTimeoutMs,
      // AMQP's link credit already bounds what the hub sends a peer; a consumer with a large
      // credit window on a slow link must not be cut, so AMQP only pauses reading.
      writeBuffer: { highBytes: limits.writeBufferHighBytes, maxBytes: Infinity },
      packetsPerConnectionSecond: limits.packetsPerConnectionSecond,
      framesPerConnectionTurn: limits.packetsPerConnectionTurn,
    });

    this.https = createHttpsServer({
      ...tlsOptions,
      keepAliveTimeout: 72_000,
      // A request's headers must all arrive within the connect timeout; Node checks every connectionsCheckingInterval.
      headersTimeout: limits.connectTimeoutMs,
      requestTimeout: Math.max(300_000, limits.connectTimeoutMs),
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(limits.connectTimeoutMs / 4))),
    });
    // Node's headersTimeout starts with the first byte of a request: a connection that completes
    // TLS and sends nothing would be held until the client leaves. It gets the connect timeout too.
    const firstRequest = new WeakMap<object, NodeJS.Timeout>();
    this.https.on('secureConnection', (socket: TLSSocket) => {
      const timer = setTimeout(() => socket.destroy(), limits.connectTimeoutMs);
      timer.unref();
      firstRequest.set(socket, timer);
      socket.once('close', () => clearTimeout(timer));
    });
    const requested = (req: IncomingMessage) => {
      clearTimeout(firstRequest.get(req.socket));
      firstRequest.delete(req.socket);
    };
    this.https.on('request', (req: IncomingMessage, res: ServerResponse) => {
      requested(req);
      // A request refused for the credentials it carried (401 with an Authorization header) counts
      // against its address, as a CONNECT refused for its credentials does: once per connection,
      // since what a flood repeats is the TLS handshake. A 401 to a request without credentials is
      // a challenge (DPS's TPM nonce, a sign-in) and does not count.
      if (req.headers.authorization !== undefined) res.once('finish', () => res.statusCode === 401 && failureOf(req.socket)());
      const hub = this.hubForRequest(req);
      if (hub) hub.http.emit('request', req, res);
      else notFound(res, this.nameOf(req));
    });
    this.https.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      requested(req);
      // MQTT and AMQP over WebSocket count their bad peers (garbage, bad credentials) as on their own ports.
      countUpgradeFailures(req.socket, failureOf(req.socket));
      const hub = this.hubForRequest(req);
      if (hub) hub.http.emit('upgrade', req, socket, head);
      else socket.destroy();
    });

    this.mqtts = createTlsServer(tlsOptions).on('secureConnection', (socket: TLSSocket) => {
      const hub = this.hubFor(serverName(socket));
      if (hub) hub.mqtt.acceptTls(socket, failureOf(socket));
      else socket.destroy();
    });
    this.amqps = createTlsServer(tlsOptions).on('secureConnection', (socket: TLSSocket) => this.amqp.acceptSocket(socket, serverName(socket), failureOf(socket)));
    for (const server of [this.https, this.mqtts, this.amqps]) {
      refuseBlocked(server, this.failures);
      // A plain TLS server only reports a failed or timed-out handshake (the HTTPS one also destroys
      // the socket): without the destroy, a socket stalled in its handshake would be held for good.
      server.on('tlsClientError', (e, socket) => {
        logger.debug({ err: e }, 'TLS handshake failed');
        failureOf(socket)();
        socket.destroy();
      });
    }
  }

  /** Binds every listener of the address (HTTPS falling back from 443 to 8443 when 'auto'). */
  static async listen(options: FrontOptions): Promise<Front> {
    const front = new Front(options);
    try {
      await front.bind();
    } catch (e) {
      await front.close();
      throw e;
    }
    return front;
  }

  /** Serves `hub` by its names from now on. */
  attach(hub: HubEndpoints): void {
    const attached: Attached = { ...hub, secureContext: createSecureContext({ key: hub.tls.key, cert: hub.tls.cert, ...CLIENT_CERTIFICATE_TLS_OPTIONS }) };
    this.hubs.set(hub.hubName.toLowerCase(), attached);
    this.amqp.attach(hub.amqp);
    if (hub.hubName.toLowerCase() === this.options.defaultHub.hubName.toLowerCase()) {
      this.defaultHub = attached;
      // Clients that send no SNI (those dialing an IP address) get the default hub's certificate.
      for (const server of [this.https, this.mqtts, this.amqps]) (server as unknown as { setSecureContext(o: object): void }).setSecureContext({ ...hub.tls, ...CLIENT_CERTIFICATE_TLS_OPTIONS });
    }
  }

  /** Stops serving `hub` (its own connections are its to close). */
  detach(hubName: string): void {
    const hub = this.hubs.get(hubName.toLowerCase());
    this.hubs.delete(hubName.toLowerCase());
    if (hub && this.defaultHub === hub) this.defaultHub = undefined;
  }

  /** The hub a client named (SNI, Host, AMQP hostname); no name or an IP address: the default hub. */
  hubFor(name: string | undefined): Attached | undefined {
    const host = name?.replace(/\.$/, '').toLowerCase();
    if (!host || isIP(host)) return this.defaultHub;
    const named = (hub: Attached | undefined) => hub?.hostNames.some((n) => n.toLowerCase() === host);
    if (named(this.defaultHub)) return this.defaultHub;
    for (const hub of this.hubs.values()) if (named(hub)) return hub;
    // Event Hubs and Service Bus namespaces ({namespace}.servicebus.…) are served by the primary
    // (default) hub's endpoint, whose namespace link families tell them apart.
    if (NAMESPACE_HOST.test(host)) return this.defaultHub;
    return undefined;
  }

  private hubForRequest(req: IncomingMessage): Attached | undefined {
    return this.hubFor(this.nameOf(req));
  }

  /** SNI when the client sent one, else the Host header without its port. */
  private nameOf(req: IncomingMessage): string | undefined {
    const sni = serverName(req.socket as TLSSocket);
    if (sni) return sni;
    const host = req.headers.host ?? '';
    return host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  }

  /** Stops taking connections; resolves once every listener is closed. Call `destroySockets` to cut what remains. */
  stopListening(): Promise<void> {
    return Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(() => undefined);
  }

  destroySockets(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  /** Closes the listeners and every connection still open on them. */
  async close(): Promise<void> {
    const stopped = this.stopListening();
    await this.amqp.close();
    this.destroySockets();
    await stopped;
  }

  private async bind(): Promise<void> {
    const { bind, ports, logger } = this.options;
    this.ports.https = await this.listenHttps();
    this.ports.mqtt = await this.listenOn(this.mqtts, bind, ports.mqtt).catch((e: NodeJS.ErrnoException) => {
      throw new StartupError(`Cannot listen for MQTT on ${bind}:${ports.mqtt}: ${e.code ?? ''} ${e.message}`);
    });
    this.ports.amqp = await this.listenOn(this.amqps, bind, ports.amqp).catch((e: NodeJS.ErrnoException) => {
      throw new StartupError(`Cannot listen for AMQP on ${bind}:${ports.amqp}: ${e.code ?? ''} ${e.message}`);
    });
    // Event Hubs' emulator connection strings (UseDevelopmentEmulator=true) dial plain AMQP; loopback only since it has no TLS.
    if (ports.amqpEmulator) {
      const loopback = /^(127\.|::1$)/.test(bind) ? bind : '127.0.0.1';
      const plain = createNetServer((socket) => this.amqp.acceptSocket(socket));
      this.ports.amqpEmulator = await this.listenOn(plain, loopback, ports.amqpEmulator).catch((e: NodeJS.ErrnoException) => {
        logger.warn(`Plain AMQP for emulator connection strings is off: cannot listen on ${loopback}:${ports.amqpEmulator} (${e.code ?? e.message})`);
        return 0;
      });
    }
  }

  /**
   * The Azure service SDK's REST client always dials 443, so 443 is the default; without the
   * privilege to bind it (and with no port configured) we fall back to 8443 and say what that
   * leaves out. A configured port that cannot be bound is an error.
   */
  private async listenHttps(): Promise<number> {
    const { bind, ports, logger } = this.options;
    if (ports.https !== 'auto') return this.listenHttpsOn(bind, ports.https);
    try {
      return await this.listenHttpsOn(bind, 443);
    } catch (e) {
      if (!(e instanceof StartupError) || !/EACCES|EPERM/.test(e.message)) throw e;
      logger.warn(
        `Cannot bind port 443 without privileges; HTTPS falls back to port ${FALLBACK_HTTPS_PORT}. ` +
          'The Azure IoT service SDK (azure-iothub) always connects to 443, so it cannot reach this hub; ' +
          `clients that take a port (curl, the fleethub CLI, HTTP libraries) use ${FALLBACK_HTTPS_PORT}. ` +
          'To get 443 without running as root: sudo setcap cap_net_bind_service=+ep "$(command -v node)", ' +
          `or redirect 443 to ${FALLBACK_HTTPS_PORT} (iptables -t nat -A OUTPUT -o lo -p tcp --dport 443 -j REDIRECT --to-port ${FALLBACK_HTTPS_PORT}).`,
      );
      return this.listenHttpsOn(bind, FALLBACK_HTTPS_PORT);
    }
  }

  private async listenHttpsOn(host: string, port: number): Promise<number> {
    try {
      return await this.listenOn(this.https, host, port);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EAFNOSUPPORT' && host === '::') return this.listenHttpsOn('0.0.0.0', port);
      const why =
        err.code === 'EACCES' || err.code === 'EPERM'
          ? `${err.code}: binding port ${port} needs privileges (root, or setcap cap_net_bind_service on node)`
          : err.code === 'EADDRINUSE'
            ? `EADDRINUSE: port ${port} on ${host} is already in use (another Fleethub?)`
            : `${err.code ?? ''} ${err.message}`;
      throw new StartupError(`Cannot listen for HTTPS on ${host}:${port}: ${why}`);
    }
  }

  private listenOn(server: Server, host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        server.on('error', (e) => this.options.logger.warn({ err: e }, 'listener error'));
        server.on('connection', (socket: Socket) => {
          this.sockets.add(socket);
          socket.once('close', () => this.sockets.delete(socket));
        });
        this.servers.push(server);
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }
}

/**
 * Cuts each connection from an address blocked for its failures as it is accepted, before the
 * TLS server sees it: no TLS socket, no SSL object, no handshake error to report. (A 'connection'
 * listener could destroy the socket, but the TLS server's own listener would still wrap it: about
 * 300 µs a connection.)
 *
 * Where the listening handle calls `onconnection(err, clientHandle)` (Node's net.Server, the
 * hook it sets on listen), the connection is closed at the handle, as Node itself closes one over
 * `maxConnections`: no JS Socket is made for it. Refused through a Socket, each cost ~70 µs of the
 * event loop: bench:hostile's hub, refusing ~1,800 connections a second, used 33% of a core against
 * 24% at the handle (18% without the attack). Only where a listening handle has no such hook is
 * the 'connection' event intercepted instead (the Socket is made and destroyed).
 */
export function refuseBlocked(server: Server, failures: AddressFailures): Refusals {
  const refusals: Refusals = { atHandle: 0, atSocket: 0 };
  let intercepting = false;
  // On 'listening' (emitted on the next tick after the handle is set up, before it can accept).
  server.on('listening', () => {
    const handle = (server as unknown as { _handle?: ListenHandle })._handle;
    if (typeof handle?.onconnection !== 'function') {
      if (!intercepting) interceptConnections();
      return;
    }
    const accept = handle.onconnection;
    const peer: { address?: string } = {};
    handle.onconnection = function (this: ListenHandle, err: number, client?: ClientHandle) {
      if (!err && client && typeof client.getpeername === 'function') {
        peer.address = undefined;
        client.getpeername(peer);
        if (failures.isBlocked(peer.address)) {
          refusals.atHandle++;
          client.close();
          return;
        }
      }
      return accept.call(this, err, client);
    };
  });
  function interceptConnections(): void {
    intercepting = true;
    const emit = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
    server.emit = ((event: string | symbol, ...args: unknown[]) => {
      if (event === 'connection') {
        const socket = args[0] as Socket;
        if (failures.isBlocked(socket.remoteAddress)) {
          refusals.atSocket++;
          socket.destroy();
          return true;
        }
      }
      return emit(event, ...args);
    }) as Server['emit'];
  }
  return refusals;
}

/** Connections `refuseBlocked` closed: at the accept handle (no Socket made), or as Sockets. */
export interface Refusals {
  atHandle: number;
  atSocket: number;
}

/** Node's TCP wrap of a listening socket (internal): its accept callback. */
interface ListenHandle {
  onconnection: (this: ListenHandle, err: number, client?: ClientHandle) => unknown;
}

/** Node's TCP wrap of an accepted connection (internal), before a Socket owns it. */
interface ClientHandle {
  getpeername(out: { address?: string }): number;
  close(): void;
}

/** The TLS server name a client sent, if any. */
function serverName(socket: TLSSocket): string | undefined {
  return typeof socket.servername === 'string' && socket.servername ? socket.servername : undefined;
}

/** What IoT Hub's front end answers for a host name that names no hub. */
function notFound(res: ServerResponse, name: string | undefined): void {
  const body = JSON.stringify({
    Message: `ErrorCode:IotHubNotFound;IoT hub '${name ?? ''}' does not exist`,
    ExceptionMessage: `Tracking ID:${randomUUID().replace(/-/g, '')}-G:0-TimeStamp:${new Date().toISOString().replace('T', ' ').slice(0, 19)}`,
  });
  res.writeHead(404, { 'content-type': 'application/json; charset=utf-8', 'iothub-errorcode': 'IotHubNotFound', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
