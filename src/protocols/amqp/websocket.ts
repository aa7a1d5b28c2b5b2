import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { AmqpEndpoint, AmqpHub } from './server.js';

export const AMQP_WEBSOCKET_PATH = '/$iothub/websocket';
/** Where Event Hubs clients (the built-in endpoint) dial AMQP over WebSocket. */
export const EVENT_HUBS_WEBSOCKET_PATH = '/$servicebus/websocket';
const SUBPROTOCOL = 'AMQPWSB10';

/**
 * AMQP over WebSocket (subprotocol AMQPWSB10) for `hub`, on its HTTP server: at /$iothub/websocket, as
 * IoT Hub serves it for AmqpWs clients, and at /$servicebus/websocket for Event Hubs clients. MQTT over WebSocket shares the path; each endpoint takes
 * the upgrades that offer its subprotocol. Returns the function that stops listening.
 */
export function acceptAmqpWebSockets(httpsServer: Server, amqp: AmqpEndpoint, hub: AmqpHub): () => void {
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false) });
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!offered.includes(SUBPROTOCOL)) return;
    const path = new URL(req.url ?? '/', 'https://x').pathname;
    if (path !== AMQP_WEBSOCKET_PATH && path !== EVENT_HUBS_WEBSOCKET_PATH) {
      socket.destroy();
      return;
    }
    // The upgrade's TLS socket holds the client certificate an X.509 device presented.
    wss.handleUpgrade(req, socket, head, (ws) => amqp.acceptWebSocket(ws, req.socket, hub));
  };
  httpsServer.on('upgrade', onUpgrade);
  return () => {
    httpsServer.off('upgrade', onUpgrade);
    for (const client of wss.clients) client.terminate();
    wss.close();
  };
}
