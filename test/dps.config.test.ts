import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, ConfigError, loadConfig } from '../src/config/index.js';
import { startTestHub, type TestHub } from './support/hub.js';
import { dpsRequest } from './support/dps.js';

describe('dps configuration', () => {
  test('defaults, a config file, and the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleethub-dps-config-'));
    try {
      assert.deepEqual(loadConfig({ cwd: dir, env: {} }).dps, { linkedHubs: [], allocationPolicy: 'hashed', retryAfterSeconds: 1 });
      writeFileSync(
        join(dir, 'fleethub.json'),
        JSON.stringify({ dps: { allocationPolicy: 'static', linkedHubs: [{ hostName: 'hub2.example', allocationWeight: 5, applyAllocationPolicy: false }] } }),
      );
      const config = loadConfig({ cwd: dir, env: { FLEETHUB_DPS_HOST_NAME: 'dps.example' } });
      assert.deepEqual(config.dps, {
        hostName: 'dps.example',
        allocationPolicy: 'static',
        linkedHubs: [{ hostName: 'hub2.example', allocationWeight: 5, applyAllocationPolicy: false }],
        retryAfterSeconds: 1,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad dps settings name the setting', () => {
    const bad: [unknown, RegExp][] = [
      [{ dps: 'x' }, /'dps' must be an object/],
      [{ dps: { idScope: '0ne1' } }, /unknown setting 'dps\.idScope'/],
      [{ dps: { allocationPolicy: 'random' } }, /dps\.allocationPolicy/],
      [{ dps: { linkedHubs: {} } }, /dps\.linkedHubs' must be a list/],
      [{ dps: { linkedHubs: [{}] } }, /dps\.linkedHubs\[0\]\.hostName/],
      [{ dps: { linkedHubs: [{ hostName: 'h', allocationWeight: -1 }] } }, /allocationWeight/],
      [{ dps: { linkedHubs: [{ hostName: 'h', connectionString: 'nope' }] } }, /connectionString/],
      [{ dps: { linkedHubs: [{ hostName: 'h', weight: 1 }] } }, /unknown setting 'dps\.linkedHubs\[0\]\.weight'/],
    ];
    for (const [input, message] of bad) {
      assert.throws(() => check(input, 'test'), (e: unknown) => e instanceof ConfigError && message.test((e as Error).message));
    }
  });
});

describe('linked hubs from configuration', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub({ dps: { allocationPolicy: 'hashed', linkedHubs: [{ hostName: 'hub2.example', allocationWeight: 3 }] } });
  });
  after(() => t.close());

  test('enrollments may name the local hub and configured hubs, not others', async () => {
    const ok = await dpsRequest(t, 'PUT', '/enrollments/two-hubs', { attestation: { type: 'symmetricKey' }, iotHubs: [t.host, 'HUB2.example'] });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json.iotHubs, [t.host, 'hub2.example']);
    const bad = await dpsRequest(t, 'PUT', '/enrollments/three-hubs', { attestation: { type: 'symmetricKey' }, iotHubs: ['hub3.example'] });
    assert.equal(bad.status, 400);
    assert.equal((await dpsRequest(t, 'GET', '/enrollments/three-hubs')).status, 404);
  });
});
