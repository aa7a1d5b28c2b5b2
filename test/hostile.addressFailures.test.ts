/**
 * An address whose connections keep failing (garbage after TLS, bad credentials, failed TLS
 * handshakes, malformed AMQP) is refused for a while: its new connections are closed as they are
 * accepted, before any TLS work, on every listener of the address. Devices on other addresses
 * are not touched, and the address is served again once the block ends
 * (connections.addressFailureLimit / addressFailureWindowMs / addressBlockMs).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Agent, request as httpsRequest } from 'node:https';
import { defaults, loadConfig } from '../src/config/index.js';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice } from './support/devices.js';
import { deviceToken } from './support/rawMqtt.js';
import mqttPacket from 'mqtt-packet';
import { tmpdir } from 'node:os';
import WebSocket from 'ws';
import { createSasToken } from '../src/core/sas.js';
import { AMQP_HEADER, SASL_HEADER, encodeFrame } from '../bench/fuzz/amqp.js';
import { connectAmqp, type RawAmqp } from './support/amqp.js';
import { refuseBlocked } from '../src/hosting/front.js';
import { AddressFailures } from '../src/protocols/addressFailures.js';

const LIMIT = 5;
const BLOCK_MS = 1500;

/** The hub answers the client's TLS handshake from `localAddress` (true), or cuts it unanswered (false). */
function handshakes(host: string, port: number, localAddress: string): Promise<TLSSocket | undefined> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host, port, localAddress } as never, () => resolve(s));
    s.once('error', () => resolve(undefined));
    s.once('close', () => resolve(undefined));
  });
}

/** CONNECT over a TLS connection from `localAddress`; the CONNACK's return code. */
async function connack(host: string, localAddress: string, deviceId: string, password: string): Promise<number> {
  const s = await handshakes(host, 8883, localAddress);
  assert.ok(s, `TLS from ${localAddress} was refused`);
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const code = new Promise<number>((resolve, reject) => {
    parser.on('packet', (p) => p.cmd === 'connack' && resolve(p.returnCode!));
    s.on('data', (b: Buffer) => parser.parse(b));
    s.once('close', () => reject(new Error('closed without CONNACK')));
  });
  s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: deviceId, keepalive: 60, username: `${host}/${deviceId}/?api-version=2021-04-12`, password: Buffer.from(password) }));
  try {
    return await code;
  } finally {
    s.destroy();
  }
}

/** Sends `bytes` after TLS and waits for the hub to close the connection. */
async function sendsGarbage(host: string, port: number, localAddress: string, bytes: Buffer): Promise<void> {
  const s = await handshakes(host, port, localAddress);
  assert.ok(s, `TLS from ${localAddress} to ${port} was refused`);
  s.on('error', () => undefined);
  s.resume();
  await new Promise<void>((resolve) => {
    s.once('close', () => resolve());
    s.write(bytes);
  });
}

describe('an address whose connections keep failing is refused for a while', () => {
  let t: TestHub;
  let key: string;
  before(async () => {
    t = await startTestHub({ connections: { ...defaults.connections, addressFailureLimit: LIMIT, addressFailureWindowMs: 10_000, addressBlockMs: BLOCK_MS } });
    key = (await createDevice(t, 'steady')).key;
  });
  after(() => t.close());

  test('garbage after TLS: at the limit the address is cut before TLS on every listener, others are served, and the block ends', async () => {
    for (let i = 0; i < LIMIT - 1; i++) await sendsGarbage(t.host, 8883, '127.0.0.11', Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    // Under the limit: still served.
    assert.equal(await connack(t.host, '127.0.0.11', 'steady', deviceToken(t.host, 'steady', key)), 0);
    await sendsGarbage(t.host, 8883, '127.0.0.11', Buffer.from([0xff, 0xff, 0xff]));
    // Blocked: no TLS handshake on MQTT, AMQP or HTTPS; a plain TCP connection is accepted and cut.
    for (const port of [8883, 5671, 443]) assert.equal(await handshakes(t.host, port, '127.0.0.11'), undefined, `port ${port} still answers TLS`);
    // Another address is not touched.
    assert.equal(await connack(t.host, '127.0.0.12', 'steady', deviceToken(t.host, 'steady', key)), 0);
    await new Promise((r) => setTimeout(r, BLOCK_MS + 200));
    assert.equal(await connack(t.host, '127.0.0.11', 'steady', deviceToken(t.host, 'steady', key)), 0);
  });

  test('bad credentials count (CONNACK 5 each), successful connections do not', async () => {
    for (let i = 0; i < 2 * LIMIT; i++) assert.equal(await connack(t.host, '127.0.0.13', 'steady', deviceToken(t.host, 'steady', key)), 0);
    const wrong = deviceToken(t.host, 'steady', Buffer.alloc(32, 1).toString('base64'));
    for (let i = 0; i < LIMIT; i++) assert.equal(await connack(t.host, '127.0.0.13', 'steady', wrong), 5);
    assert.equal(await handshakes(t.host, 8883, '127.0.0.13'), undefined);
  });

  test('failed TLS handshakes and malformed AMQP count against the same address', async () => {
    const raw = (bytes: Buffer) =>
      new Promise<void>((resolve) => {
        const s = netConnect({ host: t.host, port: 5671, localAddress: '127.0.0.14' }, () => s.end(bytes));
        s.on('error', () => undefined);
        s.once('close', () => resolve());
        s.resume();
      });
    for (let i = 0; i < 2; i++) await raw(Buffer.from('not a TLS ClientHello'));
    for (let i = 0; i < LIMIT - 2; i++) await sendsGarbage(t.host, 5671, '127.0.0.14', Buffer.from('AMQP\x09\x09\x09\x09 and then garbage'));
    assert.equal(await handshakes(t.host, 8883, '127.0.0.14'), undefined);
    assert.ok(await handshakes(t.host, 8883, '127.0.0.15'));
  });

  /**
   * A WebSocket upgrade of an HTTPS connection from `localAddress`: `send` once open, then what the
   * hub sent until it closed, or until what it sent satisfies `until` (then the client closes: an
   * AMQP close waits for the peer's).
   */
  async function overWebSocket(localAddress: string, protocol: string, send: Buffer[], until: (got: Buffer) => boolean = () => false): Promise<Buffer> {
    const ws = new WebSocket(`wss://${t.host}/$iothub/websocket`, protocol, { localAddress } as never);
    const got: Buffer[] = [];
    ws.on('message', (b: Buffer) => {
      got.push(b);
      if (until(Buffer.concat(got))) ws.close();
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => {
        for (const b of send) ws.send(b);
      });
      ws.once('close', () => resolve());
      ws.once('error', reject);
    });
    return Buffer.concat(got);
  }

  test('MQTT and AMQP over WebSocket: bad credentials count against the address of the HTTPS connection they came over', async () => {
    const wrongKey = Buffer.alloc(32, 1).toString('base64');
    const connect = mqttPacket.generate({
      cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'steady', keepalive: 60,
      username: `${t.host}/steady/?api-version=2021-04-12`, password: Buffer.from(deviceToken(t.host, 'steady', wrongKey)),
    });
    for (let i = 0; i < LIMIT; i++) {
      const answer = await overWebSocket('127.0.0.16', 'mqtt', [connect]);
      assert.deepEqual([...answer], [0x20, 0x02, 0x00, 0x05], 'CONNACK 5, then the hub closes');
    }
    assert.equal(await handshakes(t.host, 8883, '127.0.0.16'), undefined, 'the address is refused');

    // SASL PLAIN with a service token signed with the wrong key, pipelined up to the open frame.
    const token = createSasToken(t.host, wrongKey, Math.floor(Date.now() / 1000) + 600, 'iothubowner');
    const opening = [
      { kind: 'header' as const, bytes: SASL_HEADER },
      { kind: 'sasl' as const, performative: 'sasl_init', fields: { mechanism: 'PLAIN', initial_response: Buffer.from(`\0iothubowner@sas.root.${t.host}\0${token}`) } },
      { kind: 'header' as const, bytes: AMQP_HEADER },
      { kind: 'amqp' as const, channel: 0, performative: 'open', fields: { container_id: 'bad', hostname: t.host } },
    ].map((f) => encodeFrame(f)!);
    for (let i = 0; i < LIMIT; i++) {
      const answer = await overWebSocket('127.0.0.17', 'AMQPWSB10', [Buffer.concat(opening)], (got) => got.includes('amqp:unauthorized-access'));
      assert.ok(answer.includes('amqp:unauthorized-access'), 'the connection is closed as unauthorized');
    }
    assert.equal(await handshakes(t.host, 5671, '127.0.0.17'), undefined, 'the address is refused');
    assert.ok(await handshakes(t.host, 5671, '127.0.0.18'), 'another address is served');
  });

  /** A device-to-cloud message over the device HTTPS API from `localAddress`; the status. */
  function httpsSend(localAddress: string, authorization: string | undefined, agent: Agent | false): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: t.host,
          port: 443,
          method: 'POST',
          path: '/devices/steady/messages/events?api-version=2020-03-13',
          localAddress,
          agent,
          headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
        },
        (res) => {
          res.resume();
          res.once('end', () => resolve(res.statusCode!));
        },
      );
      req.once('error', reject);
      req.end('{"n":1}');
    });
  }

  test('HTTPS: requests refused for the credentials they carried count, once per connection; a 401 without credentials does not', async () => {
    const wrong = deviceToken(t.host, 'steady', Buffer.alloc(32, 1).toString('base64'));
    // Without credentials: a 401 each time, never counted.
    for (let i = 0; i < 2 * LIMIT; i++) assert.equal(await httpsSend('127.0.0.19', undefined, false), 401);
    // Bad credentials on one kept-alive connection: one failure, however many requests.
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 2 * LIMIT; i++) assert.equal(await httpsSend('127.0.0.19', wrong, keepAlive), 401);
    keepAlive.destroy();
    assert.equal(await httpsSend('127.0.0.19', deviceToken(t.host, 'steady', key), false), 204, 'still served');
    // A connection per bad request: the address is refused at the limit (the kept-alive one counted once).
    for (let i = 0; i < LIMIT - 1; i++) assert.equal(await httpsSend('127.0.0.19', wrong, false), 401);
    for (const port of [443, 8883]) assert.equal(await handshakes(t.host, port, '127.0.0.19'), undefined, `port ${port} still answers TLS`);
    assert.equal(await httpsSend('127.0.0.20', deviceToken(t.host, 'steady', key), false), 204, 'another address is served');
  });

  test('AMQP claims-based security: put-tokens refused (401) count, once per connection', async () => {
    const wrong = createSasToken(t.host, Buffer.alloc(32, 1).toString('base64'), Math.floor(Date.now() / 1000) + 600, 'iothubowner');
    const putWrong = async (c: RawAmqp) => {
      const answer = await c.request('$cbs', { application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: t.host }, body: wrong });
      assert.equal(answer.application_properties!['status-code'], 401);
    };
    // Refused tokens on one connection: one failure, however many.
    const kept = await connectAmqp(t.host, { localAddress: '127.0.0.21' } as never);
    for (let i = 0; i < 2 * LIMIT; i++) await putWrong(kept);
    await kept.close();
    // One per connection: each of these connections is still served, and the last reaches the limit.
    for (let i = 0; i < LIMIT - 1; i++) {
      const c = await connectAmqp(t.host, { localAddress: '127.0.0.21' } as never);
      await putWrong(c);
      await c.close();
    }
    for (const port of [5671, 443]) assert.equal(await handshakes(t.host, port, '127.0.0.21'), undefined, `port ${port} still answers TLS`);
    assert.ok(await handshakes(t.host, 5671, '127.0.0.22'), 'another address is served');
  });

  test('the settings: 0 turns the limit off, a negative one is refused', () => {
    assert.equal(loadConfig({ cwd: tmpdir(), env: {} }).connections.addressFailureLimit, 100);
    assert.equal(loadConfig({ cwd: tmpdir(), env: { FLEETHUB_ADDRESS_FAILURE_LIMIT: '0' } }).connections.addressFailureLimit, 0);
    assert.throws(() => loadConfig({ cwd: tmpdir(), env: {}, flags: { connections: { addressFailureLimit: -1 } } }), /'connections.addressFailureLimit' must be a number of at least 0/);
    assert.throws(() => loadConfig({ cwd: tmpdir(), env: {}, flags: { connections: { addressBlockMs: 0 } } }), /'connections.addressBlockMs' must be a number of at least 1/);
  });

  test('a blocked address is cut at the accept handle: no Socket is made for it (a flood costs the accept and the close)', async () => {
    const failures = new AddressFailures({ failures: 1, windowMs: 10_000, blockMs: 60_000 });
    const server = createNetServer();
    const refusals = refuseBlocked(server, failures);
    const accepted: Socket[] = [];
    server.on('connection', (s: Socket) => accepted.push(s.end()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const dial = (localAddress: string) =>
      new Promise<void>((resolve) => {
        const c = netConnect({ host: '127.0.0.1', port, localAddress }).on('error', () => undefined);
        c.resume().once('close', () => resolve());
      });
    try {
      failures.failed('127.0.0.31');
      assert.ok(failures.isBlocked('127.0.0.31'));
      for (let i = 0; i < 20; i++) await dial('127.0.0.31');
      assert.deepEqual(refusals, { atHandle: 20, atSocket: 0 }, 'refused at the handle, on this Node');
      assert.equal(accepted.length, 0);
      await dial('127.0.0.32');
      assert.equal(accepted.length, 1, 'another address is accepted');
      assert.deepEqual(refusals, { atHandle: 20, atSocket: 0 });
    } finally {
      server.close();
    }
  });
});
