/**
 * A flood of connections that complete TLS and then send garbage or bad credentials. Garbage is
 * closed at its first bytes (long before the connect timeout); bad credentials get CONNACK 5 and
 * a close, write nothing, and are logged a few lines a minute, not one line per attempt; a device
 * keeps publishing throughout.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import pino from 'pino';
import { defaults } from '../src/config/index.js';
import { rawRequest, serviceToken, startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventsOf } from './support/devices.js';
import { deviceToken, mqttDevice, RawConnection } from './support/rawMqtt.js';

/** Long, so that a close within it is the garbage check, not the timeout. */
const CONNECT_MS = 20_000;

function tlsOpen(host: string, port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host, port, ...(port === 443 ? { ALPNProtocols: ['http/1.1'] } : {}) }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends `bytes` and resolves with how long the hub took to close the connection. */
async function closedAfter(host: string, port: number, bytes: Buffer, ms = 3000): Promise<number> {
  const s = await tlsOpen(host, port);
  s.on('error', () => undefined);
  s.resume();
  const start = Date.now();
  const closed = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open ${ms} ms after ${bytes.subarray(0, 8).toString('hex')}…`)), ms);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - start);
    });
  });
  s.write(bytes);
  try {
    return await closed;
  } finally {
    s.destroy();
  }
}

/** Garbage whose first byte cannot start an MQTT CONNECT. */
function garbage(): Buffer {
  const b = randomBytes(64);
  if (b[0] === 0x10) b[0] = 0x30;
  return b;
}

describe('garbage and bad credentials are refused cheaply', () => {
  let t: TestHub;
  let key: string;
  const lines: { level: number; msg: string }[] = [];
  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as { level: number; msg: string });
        done();
      },
    });
    // The flood comes from one address: the per-address limit (hostile.addressFailures) would cut it
    // at accept, before the bounds this file is about.
    t = await startTestHub({ connections: { ...defaults.connections, connectTimeoutMs: CONNECT_MS, addressFailureLimit: 0 } }, { logger: pino({ level: 'info' }, sink) });
    key = (await createDevice(t, 'steady')).key;
    await createDevice(t, 'victim');
  });
  after(() => t.close());

  test('MQTT: 200 connections sending garbage, or a CONNECT claiming a huge length, are closed at their first bytes; a device keeps publishing', async () => {
    const device = await mqttDevice(t.host, 'steady', key);
    const before = (await eventsOf(t, 'steady')).length;
    let published = 0;
    let flooding = true;
    const publishing = (async () => {
      while (flooding) {
        await device.publishAsync('devices/steady/messages/events/', `m${published}`, { qos: 1 });
        published++;
      }
    })();
    const took: number[] = [];
    for (let round = 0; round < 20; round++) {
      const inputs = Array.from({ length: 10 }, (_, i) => (i === 0 ? Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f, 0x00]) : garbage()));
      took.push(...(await Promise.all(inputs.map((b) => closedAfter(t.host, 8883, b)))));
    }
    flooding = false;
    await publishing;
    assert.ok(Math.max(...took) < 1000, `closed within ${Math.max(...took)} ms (the connect timeout is ${CONNECT_MS} ms)`);
    assert.ok(published > 0);
    assert.equal((await eventsOf(t, 'steady')).length, before + published);
    await device.endAsync();
  });

  test('MQTT: 300 CONNECTs with bad credentials get CONNACK 5 and are closed; nothing is written and the log gets a few lines, not 300', async () => {
    const token = await serviceToken(t);
    const get = () => rawRequest(t.host, 'GET', '/devices/victim?api-version=2021-04-12', { headers: { authorization: token } });
    const before = (await get()).json;
    const refusedLines = () => lines.filter((l) => l.level >= 30 && /refused/i.test(l.msg)).length;
    const logged = refusedLines();
    const wrongKey = Buffer.alloc(32, 7).toString('base64');
    for (let round = 0; round < 30; round++) {
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          const c = await RawConnection.open(t.host);
          assert.equal(await c.connect(t.host, 'victim', deviceToken(t.host, 'victim', wrongKey)), 5);
          await c.closed;
        }),
      );
    }
    const after = (await get()).json;
    assert.deepEqual(after, before, 'the registry entry is unchanged (no connection state, no activity written)');
    const more = refusedLines() - logged;
    assert.ok(more <= 25, `${more} info lines for 300 refused CONNECTs`);
  });

  test('AMQP and HTTPS: garbage after TLS is closed at once', async () => {
    const amqp = await Promise.all(Array.from({ length: 50 }, () => closedAfter(t.host, 5671, Buffer.concat([Buffer.from('GARBAGE!'), randomBytes(56)]))));
    const https = await Promise.all(Array.from({ length: 50 }, () => closedAfter(t.host, 443, randomBytes(64))));
    assert.ok(Math.max(...amqp, ...https) < 1000, `closed within ${Math.max(...amqp)} / ${Math.max(...https)} ms`);
  });
});
