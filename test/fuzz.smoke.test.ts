/**
 * CI's taste of `npm run fuzz`: each target for 2 s (every property of it) against a live hub, with the same
 * invariants (no crash, no error log, no held connection, the control devices keep sending).
 * The real runs are `npm run fuzz -- --seconds 600` (see README).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFuzzHub, type FuzzHub } from '../bench/fuzz/hub.js';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { runTarget, type FuzzTarget } from '../bench/fuzz/harness.js';
import { targets } from '../bench/fuzz/targets.js';

// Each property of each target gets a slice of this: the file stays well under 30 s.
const SECONDS = Number(process.env.FUZZ_SMOKE_SECONDS ?? 2);

describe('fuzz smoke', () => {
  let hub: FuzzHub;
  before(async () => {
    hub = await startFuzzHub();
  });
  after(() => hub.close());

  // The harness must be able to fail: a held connection, a device session and a bad answer are reported.
  test('the harness reports a connection and a device session the hub still holds, and a bad answer, with the input', async () => {
    const kept: TLSSocket[] = [];
    const leaky: FuzzTarget = {
      name: 'leaky',
      ports: [8883],
      async properties() {
        return [
          {
            name: 'holds',
            arbitrary: fc.nat(),
            async run(n: number) {
              // Not one of the fuzzer's own sockets: stays open past the check, so the hub holds its side.
              // It connects as the fuzz device (CONNACK awaited), so the hub also counts a device session.
              if (kept.length === 0) {
                const socket = await new Promise<TLSSocket>((resolve) => { const s = tlsConnect({ host: hub.host, port: 8883, rejectUnauthorized: false }, () => resolve(s)); });
                kept.push(socket);
                const { id } = hub.devices.fuzz;
                const connack = new Promise((resolve) => socket.once('data', resolve));
                socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: id, keepalive: 60, username: `${hub.host}/${id}/?api-version=2021-04-12`, password: Buffer.from(hub.deviceToken(id)) }));
                await connack;
              }
              return n > 1000 ? `answered badly to ${n}` : undefined;
            },
          },
        ];
      },
    };
    try {
      const report = await runTarget(leaky, hub, { seconds: 1, seed: 1, settleMs: 500, controlDevices: false });
      const kinds = [...new Set(report.findings.map((f) => f.kind))].sort();
      assert.deepEqual(kinds, ['bad-answer', 'leak']);
      assert.ok(report.findings.some((f) => f.kind === 'leak' && f.message.includes('connection(s) the fuzzer closed')), 'the held socket is reported');
      assert.ok(report.findings.some((f) => f.kind === 'leak' && f.message.includes('device session(s)')), 'the device session is reported');
      const bad = report.findings.find((f) => f.kind === 'bad-answer')!;
      assert.equal(bad.counterexample, '1001', 'shrunk to the smallest input that fails');
    } finally {
      for (const s of kept) s.destroy();
    }
  });

  for (const name of Object.keys(targets)) {
    test(`${name}: ${SECONDS} s of fuzzing finds nothing, and the control devices keep sending`, async () => {
      const report = await runTarget(targets[name]!, hub, { seconds: SECONDS, seed: 20 });
      assert.ok(report.executions > 0, 'inputs were sent');
      // Every property of the target (the harness lists them all, run or not) got inputs.
      for (const [property, executions] of Object.entries(report.properties)) assert.ok(executions > 0, `${property} was fuzzed`);
      assert.ok(report.controlSends > 0, 'the control devices sent telemetry');
      assert.deepEqual(report.findings, []);
    });
  }
});
