/**
 * A separate process that uses azure-iothub the way a user's back-end does: it trusts the hub
 * only through NODE_EXTRA_CA_CERTS. Usage: node sdk-client.js <connectionString> <op> [deviceId]
 * Prints one JSON line: {ok: true, result} or {ok: false, name, message}.
 */
import iothub from 'azure-iothub';

const [cs, op, id] = process.argv.slice(2);
const registry = iothub.Registry.fromConnectionString(cs!);
try {
  const result =
    op === 'create' ? (await registry.create({ deviceId: id! })).responseBody
    : op === 'get' ? (await registry.get(id!)).responseBody
    : op === 'list' ? (await registry.list()).responseBody
    : undefined;
  if (result === undefined) throw new Error(`unknown op ${op}`);
  process.stdout.write(JSON.stringify({ ok: true, result }) + '\n');
} catch (e) {
  const err = e as Error;
  process.stdout.write(JSON.stringify({ ok: false, name: err.name, message: err.message }) + '\n');
}
