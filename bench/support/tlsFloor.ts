/**
 * The floor any Node MQTT broker pays: a bare `node:tls` server, in a child process, with the same
 * server certificate and TLS options as Fleethub's MQTT listener, that frames MQTT 3.1.1 minimally. It answers
 * CONNECT with CONNACK (accepted, no credentials checked) and each QoS 1 PUBLISH with a PUBACK,
 * written once per socket read (all the PUBACKs of one chunk in one TLS write), and does nothing
 * else: no parsing library, no authentication, no storage. Its CPU per message and RSS per
 * connection are what TLS, the socket and the event loop cost on their own. Used by bench:d2c
 * (`--floor`) and bench:connect.
 *
 *   startFloor(work, host)   from a bench (the child is this file run with `--serve`)
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { CLIENT_CERTIFICATE_TLS_OPTIONS } from '../../src/protocols/tls/peerChain.js';
import type { Broker } from './brokers.js';

const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);

/** Starts the floor server on `host` with `work`'s TLS material (as benchTls wrote it). */
export async function startFloor(work: string, host: string): Promise<Broker> {
  // Imported here, so that the server child loads node:tls and nothing else.
  const { freePort, stopChild, waitForTlsPort } = await import('./brokers.js');
  const port = await freePort(host);
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', host, String(port), join(work, 'tls', 'server-cert.pem'), join(work, 'tls', 'server-key.pem')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  process.on('exit', () => child.kill('SIGKILL'));
  const ca = readFileSync(join(work, 'ca', 'ca-cert.pem'), 'utf8');
  await waitForTlsPort(host, port, ca);
  return { name: 'Node TLS floor', host, port, pid: child.pid!, ca, username: (id) => id, password: () => undefined, stop: () => stopChild(child) };
}

function serve(host: string, port: number, certPath: string, keyPath: string): void {
  const server = createServer({ cert: readFileSync(certPath), key: readFileSync(keyPath), ...CLIENT_CERTIFICATE_TLS_OPTIONS }, (socket: TLSSocket) => {
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    let pending: Buffer | undefined;
    socket.on('data', (chunk: Buffer) => {
      let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = undefined;
      let at = 0;
      let out: Buffer | undefined;
      let acks = 0;
      for (;;) {
        // Fixed header: type byte, then the remaining length (1-4 bytes, 7 bits each).
        if (buf.length - at < 2) break;
        let length = 0;
        let mul = 1;
        let i = at + 1;
        let complete = false;
        for (; i < buf.length && i < at + 5; i++) {
          const b = buf[i]!;
          length += (b & 0x7f) * mul;
          mul *= 128;
          if ((b & 0x80) === 0) {
            complete = true;
            i++;
            break;
          }
        }
        if (!complete || buf.length - i < length) break;
        const type = buf[at]! >> 4;
        if (type === 1) socket.write(CONNACK);
        else if (type === 3 && ((buf[at]! >> 1) & 3) === 1) {
          // QoS 1 PUBLISH: the packet id follows the topic.
          const topicLength = buf.readUInt16BE(i);
          out ??= Buffer.allocUnsafe(64);
          if (out.length < (acks + 1) * 4) out = Buffer.concat([out, Buffer.allocUnsafe(out.length)]);
          out[acks * 4] = 0x40;
          out[acks * 4 + 1] = 0x02;
          out[acks * 4 + 2] = buf[i + 2 + topicLength]!;
          out[acks * 4 + 3] = buf[i + 3 + topicLength]!;
          acks++;
        } else if (type === 12) socket.write(Buffer.from([0xd0, 0x00]));
        else if (type === 14) socket.end();
        at = i + length;
      }
      if (at < buf.length) pending = Buffer.from(buf.subarray(at));
      if (acks > 0) socket.write(out!.subarray(0, acks * 4));
    });
  });
  server.listen(port, host);
  process.on('SIGTERM', () => process.exit(0));
}

if (process.argv[2] === '--serve') serve(process.argv[3]!, Number(process.argv[4]), process.argv[5]!, process.argv[6]!);
