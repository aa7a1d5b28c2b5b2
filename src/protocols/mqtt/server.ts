import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Server as HttpsServer, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from 'pino';
import { CLIENT_CERTIFICATE_TLS_OPTIONS, peerChain } from '../tls/peerChain.js';
import { MqttSession, MAX_PACKET_BYTES, type SessionContext } from './session.js';
import type { ClientCertificate } from './connect.js';
import { PersistentSessions } from './persistentSessions.js';

export const WEBSOCKET_PATH = '/$iothub/websocket';

export interface MqttEndpointOptions extends SessionContext {
  key: string;
  cert: string;
  host: string;
  port: number;
  /** The HTTPS server whose 'upgrade' requests to /$iothub/websocket carry MQTT over WebSocket. */
  httpsServer?: HttpsServer;
}

export interface MqttEndpoint {
  readonly port: number;
  close(): Promise<void>;
}

/** The device endpoint: MQTT over TLS on its own port, and over WebSocket on the HTTPS listener. */
export async function startMqttEndpoint(options: MqttEndpointOptions): Promise<MqttEndpoint> {
  const sessions = new Set<MqttSession>();
  const logger: Logger = options.logger;
  // One set of kept subscriptions for both listeners: a device may come back over either.
  const context: SessionContext = { ...options, persistentSessions: options.persistentSessions ?? new PersistentSessions() };
  const track = (stream: Duplex, certificate: () => ClientCertificate | undefined, remote: string) => {
    const session = new MqttSession(stream, context, certificate, remote);
    sessions.add(session);
    session.onClose(() => sessions.delete(session));
  };

  const tls: TlsServer = createTlsServer({
    key: options.key,
    cert: options.cert,
    // Devices may authenticate with a client certificate; it is verified against the registry,
    // not against a trust store, so the handshake accepts any.
    ...CLIENT_CERTIFICATE_TLS_OPTIONS,
  });
  tls.on('secureConnection', (socket: TLSSocket) => {
    socket.setNoDelay(true);
    track(socket, () => peerChain(socket), `${socket.remoteAddress}:${socket.remotePort}`);
  });
  tls.on('tlsClientError', (e) => logger.debug({ err: e }, 'TLS handshake failed'));
  await new Promise<void>((resolve, reject) => {
    tls.once('error', reject);
    tls.listen({ host: options.host, port: options.port }, () => {
      tls.off('error', reject);
      resolve();
    });
  });
  tls.on('error', (e) => logger.error({ err: e }, 'MQTT listener error'));

  let wss: WebSocketServer | undefined;
  let onUpgrade: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined;
  if (options.httpsServer) {
    const server = options.httpsServer;
    wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_PACKET_BYTES + 1024,
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
    });
    onUpgrade = (req, socket, head) => {
      // AMQP over WebSocket shares the path; the AMQP endpoint's own 'upgrade' listener takes it.
      if (/(^|,)\s*AMQPWSB10\s*(,|$)/i.test(String(req.headers['sec-websocket-protocol'] ?? ''))) return;
      if (new URL(req.url ?? '/', 'https://x').pathname !== WEBSOCKET_PATH) {
        // Other WebSocket endpoints (AMQP) may listen on the same server; refuse only when none does.
        if (server.listenerCount('upgrade') === 1) socket.destroy();
        return;
      }
      wss!.handleUpgrade(req, socket, head, (ws) => {
        const tlsSocket = req.socket as TLSSocket;
        const stream = createWebSocketStream(ws);
        stream.on('error', () => stream.destroy());
        track(stream, () => peerChain(tlsSocket), `${tlsSocket.remoteAddress}:${tlsSocket.remotePort} (ws)`);
      });
    };
    server.on('upgrade', onUpgrade);
  }

  const address = tls.address();
  return {
    port: typeof address === 'object' && address ? address.port : options.port,
    async close() {
      if (onUpgrade) options.httpsServer!.off('upgrade', onUpgrade);
      const closed = new Promise<void>((resolve) => tls.close(() => resolve()));
      for (const s of [...sessions]) s.shutdown();
      wss?.close();
      await closed;
    },
  };
}
