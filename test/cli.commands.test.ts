import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { commandModules, modulesFor, topLevelCommands } from '../src/cli/commands.js';
import { fleethub } from './support/process.js';

/** The CLI loads only the invoked command's module: its table must match what the modules register. */
test('every top-level command is mapped to the module that registers it, and only those', async () => {
  const registered: Record<string, string> = {};
  for (const [name, load] of Object.entries(commandModules)) {
    const program = new Command();
    (await load())(program);
    assert.ok(program.commands.length > 0, `${name} registers no command`);
    for (const c of program.commands) registered[c.name()] = name;
  }
  assert.deepEqual(registered, topLevelCommands);
});

test('the arguments choose one module; help, nothing and unknown commands load all', () => {
  assert.equal(modulesFor(['device', 'list'])?.[0], commandModules.device);
  assert.equal(modulesFor(['--data', '/tmp/x', 'routing', 'stats'])?.[0], commandModules.routing);
  assert.equal(modulesFor(['--config=f.json', 'import', '--help'])?.[0], commandModules.importExport);
  assert.equal(modulesFor(['--data', 'servicebus', 'eventhubs'])?.[0], commandModules.namespaces);
  assert.equal(modulesFor([]), undefined);
  assert.equal(modulesFor(['--help']), undefined);
  assert.equal(modulesFor(['devices']), undefined);
});

test('top-level help still lists every command; an unknown command is still an error', async () => {
  const help = await fleethub(['--help']);
  for (const name of Object.keys(topLevelCommands)) assert.match(help.stdout, new RegExp(`\\n  ${name}\\b`), name);
  const unknown = await fleethub(['devices']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /unknown command 'devices'/);
});
