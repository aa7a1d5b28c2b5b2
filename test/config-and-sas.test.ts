import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import common from 'azure-iot-common';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { createSasToken, parseSasToken, resourceCovers, signatureMatches } from '../src/core/sas.js';
import { isValidDeviceId, isValidKey } from '../src/core/ids.js';

describe('configuration layers: defaults < file < environment < flags', () => {
  test('later layers win, ports merge, dataDir resolves against the working directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleethub-cfg-'));
    writeFileSync(join(dir, 'fleethub.yaml'), 'hubName: from-file\nhostName: file.example\nports:\n  https: 9443\n  mqtt: 1883\n');
    const c = loadConfig({ cwd: dir, env: { FLEETHUB_HOST_NAME: 'env.example', FLEETHUB_MQTT_PORT: '2883' }, flags: { hubName: 'from-flags' } });
    assert.equal(c.hubName, 'from-flags');
    assert.equal(c.hostName, 'env.example');
    assert.deepEqual(c.ports, { https: 9443, mqtt: 2883, amqp: 5671, amqpEmulator: 5672, storage: 10000 });
    assert.equal(c.dataDir, join(dir, '.fleethub'));
    rmSync(dir, { recursive: true, force: true });
  });

  test('invalid values name their source', () => {
    assert.throws(() => loadConfig({ cwd: tmpdir(), env: { FLEETHUB_HTTPS_PORT: 'x' } }), /FLEETHUB_HTTPS_PORT must be a port number/);
    assert.throws(() => loadConfig({ cwd: tmpdir(), env: {}, flags: { logLevel: 'loud' as never } }), /command-line flags: 'logLevel' must be one of/);
    assert.throws(() => loadConfig({ cwd: tmpdir(), env: {}, flags: { hubName: 'no spaces allowed' } }), ConfigError);
    assert.throws(() => loadConfig({ cwd: tmpdir(), env: {}, file: 'missing.json' }), /Config file not found/);
  });

  test('configurations.evaluationIntervalSeconds: default five minutes, set by file or environment, checked', () => {
    assert.equal(loadConfig({ cwd: tmpdir(), env: {} }).configurations.evaluationIntervalSeconds, 300);
    const dir = mkdtempSync(join(tmpdir(), 'fleethub-cfg-'));
    writeFileSync(join(dir, 'fleethub.json'), JSON.stringify({ configurations: { evaluationIntervalSeconds: 60 } }));
    assert.equal(loadConfig({ cwd: dir, env: {} }).configurations.evaluationIntervalSeconds, 60);
    assert.equal(loadConfig({ cwd: dir, env: { FLEETHUB_CONFIGURATIONS_EVALUATION_INTERVAL_SECONDS: '1' } }).configurations.evaluationIntervalSeconds, 1);
    rmSync(dir, { recursive: true, force: true });
    assert.throws(
      () => loadConfig({ cwd: tmpdir(), env: { FLEETHUB_CONFIGURATIONS_EVALUATION_INTERVAL_SECONDS: 'soon' } }),
      /FLEETHUB_CONFIGURATIONS_EVALUATION_INTERVAL_SECONDS: 'configurations.evaluationIntervalSeconds' must be a number/,
    );
    assert.throws(() => loadConfig({ cwd: tmpdir(), env: {}, flags: { configurations: { every: 1 } as never } }), /unknown setting 'configurations.every'/);
  });
});

describe('shared access signatures, checked against the Azure SDK’s own implementation', () => {
  const key = Buffer.alloc(32, 7).toString('base64');
  const se = Math.floor(Date.now() / 1000) + 3600;

  test('a token made by azure-iot-common verifies; one made here verifies there too', () => {
    const sdkToken = common.SharedAccessSignature.create('myhub.example', 'iothubowner', key, se).toString();
    const parsed = parseSasToken(sdkToken)!;
    assert.equal(parsed.keyName, 'iothubowner');
    assert.equal(signatureMatches(parsed, key), true);
    assert.equal(signatureMatches(parsed, Buffer.alloc(32, 8).toString('base64')), false);

    const ours = createSasToken('myhub.example/devices/d#1', key, se);
    const theirs = common.SharedAccessSignature.create(encodeURIComponent('myhub.example/devices/d#1'), undefined as never, key, se).toString();
    assert.equal(parseSasToken(ours)!.signature, parseSasToken(theirs)!.signature);
  });

  test('audience coverage is by whole path segment, case-insensitive', () => {
    assert.ok(resourceCovers('Hub.Example', 'hub.example/devices/d1'));
    assert.ok(resourceCovers('hub.example/devices/d1', 'hub.example/devices/d1/modules/m'));
    assert.ok(!resourceCovers('hub.example/devices/d1', 'hub.example/devices/d10'));
    assert.ok(!resourceCovers('hub.example/devices/d1/modules/m', 'hub.example/devices/d1'));
  });

  test('malformed tokens are rejected', () => {
    for (const t of ['', 'SharedAccessSignature', 'SharedAccessSignature sr=a&sig=b', 'SharedAccessSignature sr=a&sig=b&se=soon', 'Basic abc']) {
      assert.equal(parseSasToken(t), undefined, t);
    }
  });

  test('ids and keys follow IoT Hub’s rules', () => {
    assert.ok(isValidDeviceId("A-z0:.+%_#*?!(),=@;$'"));
    assert.ok(!isValidDeviceId('a/b') && !isValidDeviceId('') && !isValidDeviceId('x'.repeat(129)) && !isValidDeviceId('é'));
    assert.ok(isValidKey(Buffer.alloc(16).toString('base64')) && isValidKey(Buffer.alloc(64).toString('base64')));
    assert.ok(!isValidKey(Buffer.alloc(15).toString('base64')) && !isValidKey(Buffer.alloc(65).toString('base64')) && !isValidKey('abc'));
  });
});
