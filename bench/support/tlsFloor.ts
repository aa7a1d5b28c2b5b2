/**
 * The floor of a device connection's cost in Node: a TLS server (the same key, certificate and
 * client-certificate options as Fleethub's MQTT listener) that answers the first bytes of each
 * connection with a CONNACK and does nothing else. bench/connect measures it as a third broker,
 * so "RSS per connection" has a baseline no Node MQTT server can go below.
 *
 *   node dist/bench/support/tlsFloor.js HOST PORT KEY.pem CERT.pem
 */
import { readFileSync } from 'node:fs';
import { createServer, type TLSSocket } from 'node:tls';
import { CLIENT_CERTIFICATE_TLS_OPTIONS } from '../../src/protocols/tls/peerChain.js';

const [host, port, key, cert] = process.argv.slice(2) as [string, string, string, string];
const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const sockets = new Set<TLSSocket>();
const server = createServer({ key: readFileSync(key), cert: readFileSync(cert), ...CLIENT_CERTIFICATE_TLS_OPTIONS }, (socket) => {
  sockets.add(socket);
  socket.once('data', () => socket.write(CONNACK));
  socket.on('error', () => socket.destroy());
  socket.on('close', () => sockets.delete(socket));
});
server.listen({ host, port: Number(port) }, () => console.log('is running'));
