/**
 * `fleethub routing`: a hub's message routing through the control plane's ARM API, as
 * `az iot hub message-endpoint|message-route|message-enrichment` do. Every change is a
 * read-modify-write of the hub resource (GET, then PUT with If-Match of its etag), so the control
 * plane stays the one writer; reads use the hub's routing operations (`$testnew`, `$testall`,
 * `routingEndpointsHealth`) and Fleethub's `routing/stats`.
 */
import type { Command } from 'commander';
import { readRuntime } from '../info.js';
import { ArmClient } from './control.js';
import { cliConfig, CliError, type GlobalOptions } from './context.js';

const API_VERSION = '2023-06-30';
const KINDS = {
  eventhub: 'eventHubs',
  'servicebus-queue': 'serviceBusQueues',
  'servicebus-topic': 'serviceBusTopics',
  storage: 'storageContainers',
} as const;
type KindFlag = keyof typeof KINDS;
type ArmKind = (typeof KINDS)[KindFlag];
const ARM_KINDS = Object.values(KINDS);
const SOURCES = ['DeviceMessages', 'TwinChangeEvents', 'DeviceLifecycleEvents', 'DeviceConnectionStateEvents', 'DeviceJobLifecycleEvents'];

type Endpoint = Record<string, unknown> & { name: string };
interface Route {
  name: string;
  source: string;
  condition?: string;
  endpointNames: string[];
  isEnabled: boolean;
}
interface Routing {
  endpoints: Record<ArmKind, Endpoint[]> & Record<string, Endpoint[]>;
  routes: Route[];
  fallbackRoute: Route;
  enrichments: { key: string; value: string; endpointNames: string[] }[];
}

const print = (value: unknown): void => void process.stdout.write(JSON.stringify(value, null, 2) + '\n');
const collect = (v: string, prev: string[] = []) => [...prev, v];
const pairs = (list: string[] | undefined, flag: string): Record<string, string> =>
  Object.fromEntries(
    (list ?? []).map((p) => {
      const i = p.indexOf('=');
      if (i <= 0) throw new CliError(`${flag} takes key=value (got '${p}')`);
      return [p.slice(0, i), p.slice(i + 1)];
    }),
  );
const bool = (v: string | undefined, flag: string): boolean | undefined => {
  if (v === undefined) return undefined;
  if (/^(true|yes|1)$/i.test(v)) return true;
  if (/^(false|no|0)$/i.test(v)) return false;
  throw new CliError(`${flag} takes true or false (got '${v}')`);
};
const integer = (v: string, flag: string): number => {
  if (!/^\d+$/.test(v)) throw new CliError(`${flag} takes a whole number (got '${v}')`);
  return Number(v);
};
/** Keys never reach the terminal from a list. */
const maskKeys = (e: Endpoint): Endpoint =>
  typeof e.connectionString === 'string' ? { ...e, connectionString: e.connectionString.replace(/(SharedAccessKey|AccountKey)=[^;]*/gi, '$1=****') } : e;
const kindOf = (routing: Routing, name: string): ArmKind | undefined =>
  ARM_KINDS.find((k) => (routing.endpoints[k] ?? []).some((e) => e.name.toLowerCase() === name.toLowerCase()));

export function routingCommand(program: Command): void {
  const hubOptions = (c: Command) => c.option('--hub <name>', 'the hub (default: the primary hub)').option('--resource-group <rg>', "the hub's resource group (default: the default group)");
  const target = async (opts: { hub?: string; resourceGroup?: string }) => {
    const config = cliConfig(program.opts<GlobalOptions>());
    const client = await ArmClient.connect(config);
    const name = opts.hub ?? readRuntime(config.dataDir)?.hubName;
    const id = `${client.subscriptionScope}/resourceGroups/${opts.resourceGroup ?? client.tenancy.defaultResourceGroup}/providers/Microsoft.Devices/IotHubs/${name}`;
    return { client, id };
  };
  const read = async (opts: { hub?: string; resourceGroup?: string }) => {
    const { client, id } = await target(opts);
    const hub = await client.call('GET', id, API_VERSION);
    return { client, id, routing: hub.properties.routing as Routing };
  };
  /**
   * GET, change, PUT with If-Match: a concurrent writer makes the PUT fail with PreconditionFailed,
   * and the change is made again on the newer resource.
   */
  const change = async (opts: { hub?: string; resourceGroup?: string }, edit: (routing: Routing) => void): Promise<Routing> => {
    const { client, id } = await target(opts);
    for (let attempt = 1; ; attempt++) {
      const hub = await client.call('GET', id, API_VERSION);
      const routing = hub.properties.routing as Routing;
      for (const k of ARM_KINDS) routing.endpoints[k] ??= [];
      edit(routing);
      try {
        const updated = await client.call('PUT', id, API_VERSION, hub, { 'if-match': hub.etag });
        return updated.properties.routing as Routing;
      } catch (e) {
        if (attempt < 3 && e instanceof CliError && /^PreconditionFailed/.test(e.message)) continue;
        throw e;
      }
    }
  };

  const routing = program.command('routing').description("message routing: endpoints, routes, fallback route, enrichments; test, health and counters");

  // Endpoints.
  const endpoint = routing.command('endpoint').description('custom endpoints (Event Hubs, Service Bus queues and topics, storage containers)');
  const authOptions = (c: Command) =>
    c
      .option('--auth <type>', 'key (connection string), system (the hub\'s system-assigned identity) or user (a user-assigned identity)')
      .option('--identity <resourceId>', 'with --auth user: the user-assigned identity (resource id)')
      .option('--connection-string <cs>', 'with --auth key: the connection string (Event Hubs / Service Bus with EntityPath, or the storage account)')
      .option('--endpoint-uri <uri>', 'with --auth system|user: sb://NAMESPACE.servicebus.windows.net or https://ACCOUNT.blob.core.windows.net/')
      .option('--entity-path <name>', 'with --auth system|user: the event hub, queue or topic');
  /** The authentication fields of an endpoint for `--auth`, replacing the previous ones. */
  const applyAuth = (e: Endpoint, kind: ArmKind, opts: { auth?: string; identity?: string; connectionString?: string; endpointUri?: string; entityPath?: string }) => {
    const auth = opts.auth ?? (opts.connectionString ? 'key' : undefined);
    if (!auth || !['key', 'system', 'user'].includes(auth)) throw new CliError('--auth is key, system or user');
    if (opts.identity && auth !== 'user') throw new CliError('--identity goes with --auth user');
    if (auth === 'user' && !opts.identity) throw new CliError('--auth user needs --identity <resourceId>');
    delete e.identity;
    if (auth === 'key') {
      const cs = opts.connectionString ?? (e.authenticationType !== 'identityBased' ? (e.connectionString as string | undefined) : undefined);
      if (!cs) throw new CliError('--auth key needs --connection-string');
      e.authenticationType = 'keyBased';
      e.connectionString = cs;
      delete e.endpointUri;
      delete e.entityPath;
      return;
    }
    const uri = opts.endpointUri ?? (e.endpointUri as string | undefined);
    const path = opts.entityPath ?? (e.entityPath as string | undefined);
    if (!uri) throw new CliError(`--auth ${auth} needs --endpoint-uri`);
    if (!path && kind !== 'storageContainers') throw new CliError(`--auth ${auth} needs --entity-path`);
    e.authenticationType = 'identityBased';
    e.endpointUri = uri;
    if (path) e.entityPath = path;
    if (auth === 'user') e.identity = { userAssignedIdentity: opts.identity };
    delete e.connectionString;
  };
  authOptions(hubOptions(endpoint.command('add <name>').description('add a custom endpoint')))
    .requiredOption('--kind <kind>', 'eventhub, servicebus-queue, servicebus-topic or storage')
    .option('--container <name>', 'storage: the container')
    .option('--encoding <e>', 'storage: avro (default), avroDeflate or json')
    .option('--file-name-format <f>', 'storage: default {iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}')
    .option('--batch-frequency <seconds>', 'storage: 60-720 (default 300)')
    .option('--chunk-size <bytes>', 'storage: 10485760-524288000 (default 314572800)')
    .action(async (name: string, opts) => {
      const kind = KINDS[opts.kind as KindFlag];
      if (!kind) throw new CliError(`--kind is one of ${Object.keys(KINDS).join(', ')}`);
      const updated = await change(opts, (r) => {
        if (kindOf(r, name) || name.toLowerCase() === 'events') throw new CliError(`An endpoint named '${name}' already exists`);
        const e: Endpoint = { name };
        applyAuth(e, kind, opts);
        if (kind === 'storageContainers') {
          if (!opts.container) throw new CliError('--kind storage needs --container');
          Object.assign(e, {
            containerName: opts.container,
            encoding: opts.encoding ?? 'avro',
            fileNameFormat: opts.fileNameFormat ?? '{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}',
            batchFrequencyInSeconds: opts.batchFrequency ? integer(opts.batchFrequency, '--batch-frequency') : 300,
            maxChunkSizeInBytes: opts.chunkSize ? integer(opts.chunkSize, '--chunk-size') : 314572800,
          });
        } else if (opts.container || opts.encoding || opts.fileNameFormat || opts.batchFrequency || opts.chunkSize) {
          throw new CliError('--container, --encoding, --file-name-format, --batch-frequency and --chunk-size are for --kind storage');
        }
        r.endpoints[kind].push(e);
      });
      print(maskKeys(updated.endpoints[kind].find((e) => e.name === name)!));
    });
  hubOptions(endpoint.command('list').description("the hub's custom endpoints (keys masked)"))
    .option('--kind <kind>', 'only this kind')
    .action(async (opts) => {
      const { routing: r } = await read(opts);
      const kinds = opts.kind ? [KINDS[opts.kind as KindFlag]] : ARM_KINDS;
      if (kinds.some((k) => !k)) throw new CliError(`--kind is one of ${Object.keys(KINDS).join(', ')}`);
      print(kinds.flatMap((k) => (r.endpoints[k] ?? []).map((e) => ({ kind: Object.keys(KINDS).find((f) => KINDS[f as KindFlag] === k), ...maskKeys(e) }))));
    });
  hubOptions(endpoint.command('remove <name>').description('remove a custom endpoint (no route or enrichment may use it)')).action(async (name: string, opts) => {
    await change(opts, (r) => {
      const kind = kindOf(r, name);
      if (!kind) throw new CliError(`No endpoint named '${name}'`);
      const users = [...r.routes, r.fallbackRoute].filter((x) => x.endpointNames.some((n) => n.toLowerCase() === name.toLowerCase())).map((x) => x.name);
      const enrichments = r.enrichments.filter((x) => x.endpointNames.some((n) => n.toLowerCase() === name.toLowerCase())).map((x) => x.key);
      if (users.length || enrichments.length) {
        throw new CliError(`The endpoint '${name}' is used by ${[...users.map((u) => `route '${u}'`), ...enrichments.map((k) => `enrichment '${k}'`)].join(', ')}: change or remove them first`);
      }
      r.endpoints[kind] = r.endpoints[kind].filter((e) => e.name.toLowerCase() !== name.toLowerCase());
    });
    process.stdout.write(`Removed endpoint ${name}\n`);
  });
  authOptions(hubOptions(endpoint.command('set-auth <name>').description("change an endpoint's authentication type (key, system or user)"))).action(async (name: string, opts) => {
    if (!opts.auth) throw new CliError('--auth is key, system or user');
    let kind: ArmKind | undefined;
    const updated = await change(opts, (r) => {
      kind = kindOf(r, name);
      if (!kind) throw new CliError(`No endpoint named '${name}'`);
      applyAuth(r.endpoints[kind].find((e) => e.name.toLowerCase() === name.toLowerCase())!, kind, opts);
    });
    print(maskKeys(updated.endpoints[kind!].find((e) => e.name.toLowerCase() === name.toLowerCase())!));
  });

  // Routes.
  const route = routing.command('route').description('routes: a source, a condition and one endpoint');
  const routeOptions = (c: Command) =>
    hubOptions(c)
      .option('--source <source>', `${SOURCES.join(', ')} (default DeviceMessages)`)
      .option('--condition <query>', "the routing query (default 'true')")
      .option('--endpoint <name>', "the endpoint (a custom endpoint, or 'events')")
      .option('--enabled <bool>', 'true (default) or false');
  const source = (v: string | undefined) => {
    if (v === undefined) return undefined;
    const s = SOURCES.find((x) => x.toLowerCase() === v.toLowerCase());
    if (!s) throw new CliError(`--source is one of ${SOURCES.join(', ')}`);
    return s;
  };
  routeOptions(route.command('add <name>').description('add a route')).action(async (name: string, opts) => {
    if (!opts.endpoint) throw new CliError('--endpoint is required');
    const updated = await change(opts, (r) => {
      if (r.routes.some((x) => x.name.toLowerCase() === name.toLowerCase())) throw new CliError(`A route named '${name}' already exists`);
      r.routes.push({ name, source: source(opts.source) ?? 'DeviceMessages', condition: opts.condition ?? 'true', endpointNames: [opts.endpoint], isEnabled: bool(opts.enabled, '--enabled') ?? true });
    });
    print(updated.routes.find((x) => x.name === name));
  });
  routeOptions(route.command('update <name>').description("change a route's source, condition, endpoint or enabled state")).action(async (name: string, opts) => {
    const updated = await change(opts, (r) => {
      const x = r.routes.find((y) => y.name.toLowerCase() === name.toLowerCase());
      if (!x) throw new CliError(`No route named '${name}'`);
      if (opts.source !== undefined) x.source = source(opts.source)!;
      if (opts.condition !== undefined) x.condition = opts.condition;
      if (opts.endpoint !== undefined) x.endpointNames = [opts.endpoint];
      if (opts.enabled !== undefined) x.isEnabled = bool(opts.enabled, '--enabled')!;
    });
    print(updated.routes.find((x) => x.name.toLowerCase() === name.toLowerCase()));
  });
  hubOptions(route.command('list').description("the hub's routes"))
    .option('--source <source>', 'only this source')
    .action(async (opts) => {
      const { routing: r } = await read(opts);
      const s = source(opts.source);
      print(r.routes.filter((x) => !s || x.source === s));
    });
  hubOptions(route.command('remove <name>').description('remove a route')).action(async (name: string, opts) => {
    await change(opts, (r) => {
      if (!r.routes.some((x) => x.name.toLowerCase() === name.toLowerCase())) throw new CliError(`No route named '${name}'`);
      r.routes = r.routes.filter((x) => x.name.toLowerCase() !== name.toLowerCase());
    });
    process.stdout.write(`Removed route ${name}\n`);
  });

  // Fallback route.
  const fallback = routing.command('fallback').description("the fallback route (device messages that match no route go to 'events')");
  for (const verb of ['enable', 'disable'] as const) {
    hubOptions(fallback.command(verb).description(`${verb} the fallback route`)).action(async (opts) => {
      print((await change(opts, (r) => void (r.fallbackRoute.isEnabled = verb === 'enable'))).fallbackRoute);
    });
  }
  hubOptions(fallback.command('show').description('the fallback route')).action(async (opts) => print((await read(opts)).routing.fallbackRoute));

  // Enrichments.
  const enrichment = routing.command('enrichment').description('message enrichments: application properties stamped per endpoint');
  hubOptions(enrichment.command('add <key>').description('add (or replace) an enrichment'))
    .requiredOption('--value <value>', "a static value, $iothubname, or $twin.tags.… / $twin.properties.…")
    .requiredOption('--endpoint <name>', 'an endpoint it applies to (repeat for more)', collect)
    .action(async (key: string, opts) => {
      const updated = await change(opts, (r) => {
        r.enrichments = r.enrichments.filter((x) => x.key !== key);
        r.enrichments.push({ key, value: opts.value, endpointNames: opts.endpoint });
      });
      print(updated.enrichments.find((x) => x.key === key));
    });
  hubOptions(enrichment.command('list').description("the hub's enrichments")).action(async (opts) => print((await read(opts)).routing.enrichments));
  hubOptions(enrichment.command('remove <key>').description('remove an enrichment')).action(async (key: string, opts) => {
    await change(opts, (r) => {
      if (!r.enrichments.some((x) => x.key === key)) throw new CliError(`No enrichment with key '${key}'`);
      r.enrichments = r.enrichments.filter((x) => x.key !== key);
    });
    process.stdout.write(`Removed enrichment ${key}\n`);
  });

  // Test, health, counters.
  const messageOptions = (c: Command) =>
    hubOptions(c)
      .option('--body <text>', 'the message body, as text')
      .option('--app-property <k=v>', 'an application property (repeat for more)', collect)
      .option('--system-property <k=v>', 'a system property, e.g. contentType=application/json, contentEncoding=utf-8 (repeat for more)', collect)
      .option('--twin <json>', 'the twin conditions may read: {"tags": {...}, "properties": {"desired": {...}, "reported": {...}}}');
  const sample = (opts: { body?: string; appProperty?: string[]; systemProperty?: string[]; twin?: string }) => {
    let twin: unknown;
    if (opts.twin) {
      try {
        twin = JSON.parse(opts.twin);
      } catch (e) {
        throw new CliError(`--twin is not JSON: ${(e as Error).message}`);
      }
    }
    return {
      message: { body: opts.body ?? '', appProperties: pairs(opts.appProperty, '--app-property'), systemProperties: pairs(opts.systemProperty, '--system-property') },
      ...(twin !== undefined ? { twin } : {}),
    };
  };
  messageOptions(routing.command('test').description('test one route (an existing one by name, or a condition) against a sample message: true, false or undefined'))
    .option('--route <name>', 'an existing route')
    .option('--condition <query>', 'a condition not saved yet')
    .option('--source <source>', 'with --condition: the source (default DeviceMessages)')
    .action(async (opts) => {
      if (!opts.route === !opts.condition) throw new CliError('Give --route NAME or --condition QUERY');
      const { client, id, routing: r } = await read(opts);
      let tested: Route;
      if (opts.route) {
        const found = r.routes.find((x) => x.name.toLowerCase() === String(opts.route).toLowerCase());
        if (!found) throw new CliError(`No route named '${opts.route}'`);
        tested = found;
      } else {
        tested = { name: 'test', source: source(opts.source) ?? 'DeviceMessages', condition: opts.condition, endpointNames: ['events'], isEnabled: true };
      }
      print(await client.call('POST', `${id}/routing/routes/$testnew`, API_VERSION, { route: tested, ...sample(opts) }));
    });
  messageOptions(routing.command('test-all').description('the routes of a source that a sample message matches'))
    .option('--source <source>', 'the routing source (default DeviceMessages)')
    .action(async (opts) => {
      const { client, id } = await target(opts);
      print((await client.call('POST', `${id}/routing/routes/$testall`, API_VERSION, { routingSource: source(opts.source) ?? 'DeviceMessages', ...sample(opts) })).routes);
    });
  hubOptions(routing.command('health').description('endpoint health: unknown, healthy, degraded, unhealthy or dead, with the last known error')).action(async (opts) => {
    const { client, id } = await target(opts);
    const all: unknown[] = [];
    let page = await client.call('GET', `${id}/routingEndpointsHealth`, API_VERSION);
    all.push(...page.value);
    while (page.nextLink) {
      const next = new URL(page.nextLink as string);
      next.searchParams.delete('api-version');
      page = await client.call('GET', next.pathname + (next.searchParams.size ? `?${next.searchParams}` : ''), API_VERSION);
      all.push(...page.value);
    }
    print(all);
  });
  hubOptions(routing.command('stats').description('counters since the hub started: matched per route; delivered, dropped and backlog per endpoint; orphaned')).action(async (opts) => {
    const { client, id } = await target(opts);
    print(await client.call('GET', `${id}/routing/stats`, API_VERSION));
  });
}
