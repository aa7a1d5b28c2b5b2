import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { CLIENT_CERTIFICATE_TLS_OPTIONS, peerChain } from '../tls/peerChain.js';
import { MqttSession, MAX_PACKET_BYTES, type SessionContext } from './session.js';
import type { ClientCertificate } from './connect.js';
import { PersistentSessions } from './persistentSessions.js';
import { refuseNonConnect } from './firstBytes.js';
import { limitWriteBuffer, type WriteBufferLimits } from '../backPressure.js';
import { upgradeFailureCounter } from '../addressFailures.js';

export const WEBSOCKET_PATH = '/$iothub/websocket';

/**
 * One hub's MQTT device sessions. It listens on nothing: the listeners of the hub's address hand
 * it the TLS connections (8883) meant for it, and its HTTP server the WebSocket upgrades.
 */
export interface MqttSessions {
  /** A TLS connection on the MQTT port, handshake done; `failed` counts it (once) against its address (garbage, bad credentials). */
  acceptTls(socket: TLSSocket, failed?: () => void): void;
  /** Takes the upgrades to /$iothub/websocket that offer MQTT, on the hub's (non-listening) HTTP server. */
  acceptWebSockets(server: HttpServer): void;
  /** Ends every session and stops taking upgrades. */
  close(): Promise<void>;
}

/** `writeBuffer`: what a device that does not read may leave unsent (config `connections.writeBuffer*`). */
export function mqttSessions(options: SessionContext & { writeBuffer?: WriteBufferLimits }): MqttSessions {
  const sessions = new Set<MqttSession>();
  // One set of kept subscriptions for both listeners: a device may come back over either.
  const context: SessionContext = { ...options, persistentSessions: options.persistentSessions ?? new PersistentSessions() };
  const track = (stream: Duplex, certificate: () => ClientCertificate | undefined, remote: string, failed?: () => void) => {
    if (options.writeBuffer) limitWriteBuffer(stream, options.writeBuffer);
    refuseNonConnect(stream, failed);
    const session = new MqttSession(stream, context, certificate, remote, failed);
    sessions.add(session);
    session.onClose(() => sessions.delete(session));
  };
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_PACKET_BYTES + 1024,
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
  });
  const upgrades: { server: HttpServer; onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void }[] = [];
  return {
    acceptTls(socket, failed) {
      socket.setNoDelay(true);
      track(socket, () => peerChain(socket), `${socket.remoteAddress}:${socket.remotePort}`, failed);
    },
    acceptWebSockets(server) {
      const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        // AMQP over WebSocket shares the path; the AMQP endpoint's own 'upgrade' listener takes it.
        if (/(^|,)\s*AMQPWSB10\s*(,|$)/i.test(String(req.headers['sec-websocket-protocol'] ?? ''))) return;
        if (new URL(req.url ?? '/', 'https://x').pathname !== WEBSOCKET_PATH) {
          // Other WebSocket endpoints (AMQP) may listen on the same server; refuse only when none does.
          if (server.listenerCount('upgrade') === 1) socket.destroy();
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws) => {
          const tlsSocket = req.socket as TLSSocket;
          const stream = createWebSocketStream(ws);
          stream.on('error', () => stream.destroy());
          track(stream, () => peerChain(tlsSocket), `${tlsSocket.remoteAddress}:${tlsSocket.remotePort} (ws)`, upgradeFailureCounter(tlsSocket));
        });
      };
      server.on('upgrade', onUpgrade);
      upgrades.push({ server, onUpgrade });
    },
    async close() {
      for (const { server, onUpgrade } of upgrades.splice(0)) server.off('upgrade', onUpgrade);
      for (const s of [...sessions]) s.shutdown();
      wss.close();
    },
  };
}

export interface MqttEndpointOptions extends SessionContext {
  key: string;
  cert: string;
  host: string;
  port: number;
}

export interface MqttEndpoint {
  readonly port: number;
  close(): Promise<void>;
}

/** MQTT sessions on a TLS listener of their own (the hub's listeners are composed in hosting/). */
export async function startMqttEndpoint(options: MqttEndpointOptions): Promise<MqttEndpoint> {
  const sessions = mqttSessions(options);
  const tls: TlsServer = createTlsServer({ key: options.key, cert: options.cert, ...CLIENT_CERTIFICATE_TLS_OPTIONS });
  tls.on('secureConnection', (socket: TLSSocket) => sessions.acceptTls(socket));
  tls.on('tlsClientError', (e) => options.logger.debug({ err: e }, 'TLS handshake failed'));
  await new Promise<void>((resolve, reject) => {
    tls.once('error', reject);
    tls.listen({ host: options.host, port: options.port }, () => {
      tls.off('error', reject);
      resolve();
    });
  });
  tls.on('error', (e) => options.logger.error({ err: e }, 'MQTT listener error'));
  const address = tls.address();
  return {
    port: typeof address === 'object' && address ? address.port : options.port,
    async close() {
      const closed = new Promise<void>((resolve) => tls.close(() => resolve()));
      await sessions.close();
      await closed;
    },
  };
}
