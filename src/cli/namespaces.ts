/**
 * `fleethub eventhubs …` and `fleethub servicebus …`: local namespaces and their entities through
 * the control plane's ARM API (as `az eventhubs` / `az servicebus` do), signed in as the administrator.
 */
import type { Command } from 'commander';
import { ArmClient } from './control.js';
import { cliConfig, CliError, type GlobalOptions } from './context.js';

const EVENTHUB_API = '2024-01-01';
const SERVICEBUS_API = '2021-11-01';
const ROOT_RULE = 'RootManageSharedAccessKey';

const print = (value: unknown) => process.stdout.write(JSON.stringify(value, null, 2) + '\n');
const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new CliError(`'${v}' is not an integer`);
  return n;
};
const definedOnly = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

export function namespaceCommands(program: Command): void {
  const client = async () => ArmClient.connect(cliConfig(program.opts<GlobalOptions>()));
  const group = (c: ArmClient, rg?: string) => rg ?? c.tenancy.defaultResourceGroup;
  const nsId = (c: ArmClient, provider: string, rg: string | undefined, ns: string) => `${c.subscriptionScope}/resourceGroups/${group(c, rg)}/providers/${provider}/namespaces/${ns}`;

  /** `namespace create|list|delete|keys` of one provider. */
  const namespaceGroup = (parent: Command, provider: string, api: string) => {
    const ns = parent.command('namespace').description('namespaces');
    ns.command('create <name>')
      .description('create (or update) a namespace; it is served at once as {name}.servicebus.{hubDomain}')
      .option('--resource-group <rg>')
      .option('--location <location>', 'default: the resource group location')
      .option('--sku <sku>', 'Basic, Standard or Premium', 'Standard')
      .action(async (name: string, opts) => {
        const c = await client();
        const location = opts.location ?? (await c.call('GET', `${c.subscriptionScope}/resourceGroups/${group(c, opts.resourceGroup)}`, '2025-04-01')).location;
        print(await c.call('PUT', nsId(c, provider, opts.resourceGroup, name), api, { location, sku: { name: opts.sku, tier: opts.sku } }));
      });
    ns.command('list')
      .option('--resource-group <rg>')
      .action(async (opts) => {
        const c = await client();
        const scope = opts.resourceGroup ? `${c.subscriptionScope}/resourceGroups/${opts.resourceGroup}` : c.subscriptionScope;
        print((await c.call('GET', `${scope}/providers/${provider}/namespaces`, api)).value);
      });
    ns.command('delete <name>')
      .description('delete a namespace with its entities and their data')
      .option('--resource-group <rg>')
      .action(async (name: string, opts) => {
        const c = await client();
        await c.call('DELETE', nsId(c, provider, opts.resourceGroup, name), api);
        process.stdout.write(`Deleted ${nsId(c, provider, opts.resourceGroup, name)}\n`);
      });
    ns.command('keys <name>')
      .description("a namespace rule's keys and connection strings (listKeys)")
      .option('--resource-group <rg>')
      .option('--rule <rule>', 'the authorization rule', ROOT_RULE)
      .action(async (name: string, opts) => {
        const c = await client();
        print(await c.call('POST', `${nsId(c, provider, opts.resourceGroup, name)}/authorizationRules/${opts.rule}/listKeys`, api));
      });
    ns.command('rule <name>')
      .description('create (or update) a namespace authorization rule')
      .requiredOption('--namespace <ns>')
      .requiredOption('--rights <rights...>', 'Listen, Send, Manage')
      .option('--resource-group <rg>')
      .action(async (name: string, opts) => {
        const c = await client();
        print(await c.call('PUT', `${nsId(c, provider, opts.resourceGroup, opts.namespace)}/authorizationRules/${name}`, api, { properties: { rights: opts.rights } }));
      });
  };

  /** `create|list|delete|keys` of an entity kind at `path(c, opts)`. */
  const entityGroup = (
    parent: Command,
    kind: string,
    description: string,
    api: string,
    path: (c: ArmClient, opts: Record<string, string | undefined>) => string,
    parentOptions: [string, string][],
    create: { options: [string, string, ((v: string) => unknown)?][]; properties: (opts: Record<string, unknown>) => Record<string, unknown> },
    withKeys: boolean,
  ) => {
    const cmd = parent.command(kind).description(description);
    const withParents = (x: Command) => {
      for (const [flag, text] of parentOptions) x.requiredOption(flag, text);
      return x.option('--resource-group <rg>');
    };
    const created = withParents(cmd.command('create <name>').description(`create (or update) a ${kind}`));
    for (const [flag, text, parse] of create.options) (parse ? created.option(flag, text, parse) : created.option(flag, text));
    created.action(async (name: string, opts) => {
      const c = await client();
      print(await c.call('PUT', `${path(c, opts)}/${name}`, api, { properties: definedOnly(create.properties(opts)) }));
    });
    withParents(cmd.command('list').description(`list the ${kind}s`)).action(async (opts) => {
      const c = await client();
      print((await c.call('GET', path(c, opts), api)).value);
    });
    withParents(cmd.command('delete <name>').description(`delete a ${kind} (and its data)`)).action(async (name: string, opts) => {
      const c = await client();
      await c.call('DELETE', `${path(c, opts)}/${name}`, api);
      process.stdout.write(`Deleted ${path(c, opts)}/${name}\n`);
    });
    if (!withKeys) return;
    withParents(cmd.command('rule <name>').description(`create (or update) an authorization rule of a ${kind}`))
      .requiredOption('--entity <name>', `the ${kind}`)
      .requiredOption('--rights <rights...>', 'Listen, Send, Manage')
      .action(async (name: string, opts) => {
        const c = await client();
        print(await c.call('PUT', `${path(c, opts)}/${opts.entity}/authorizationRules/${name}`, api, { properties: { rights: opts.rights } }));
      });
    withParents(cmd.command('keys <name>').description(`the keys and connection strings (EntityPath={name}) of a ${kind}'s authorization rule`))
      .requiredOption('--rule <rule>', `the ${kind}'s authorization rule`)
      .action(async (name: string, opts) => {
        const c = await client();
        print(await c.call('POST', `${path(c, opts)}/${name}/authorizationRules/${opts.rule}/listKeys`, api));
      });
  };

  const eh = program.command('eventhubs').description('local Event Hubs namespaces (Microsoft.EventHub/namespaces)');
  namespaceGroup(eh, 'Microsoft.EventHub', EVENTHUB_API);
  const ehNs = (c: ArmClient, o: Record<string, string | undefined>) => nsId(c, 'Microsoft.EventHub', o.resourceGroup, o.namespace!);
  entityGroup(eh, 'hub', 'event hubs of a namespace', EVENTHUB_API, (c, o) => `${ehNs(c, o)}/eventhubs`, [['--namespace <ns>', 'the namespace']], {
    options: [
      ['--partition-count <n>', 'partitions (1-32, default 4; fixed once created)', int],
      ['--retention-days <n>', 'message retention in days (1-7)', int],
    ],
    properties: (o) => ({ partitionCount: o.partitionCount, messageRetentionInDays: o.retentionDays }),
  }, true);
  entityGroup(eh, 'consumer-group', 'consumer groups of an event hub', EVENTHUB_API, (c, o) => `${ehNs(c, o)}/eventhubs/${o.hub}/consumergroups`, [['--namespace <ns>', 'the namespace'], ['--hub <name>', 'the event hub']], {
    options: [['--user-metadata <text>', 'free text kept with the group']],
    properties: (o) => ({ userMetadata: o.userMetadata }),
  }, false);

  const sb = program.command('servicebus').description('local Service Bus namespaces (Microsoft.ServiceBus/namespaces)');
  namespaceGroup(sb, 'Microsoft.ServiceBus', SERVICEBUS_API);
  const sbNs = (c: ArmClient, o: Record<string, string | undefined>) => nsId(c, 'Microsoft.ServiceBus', o.resourceGroup, o.namespace!);
  const receiverOptions: [string, string, ((v: string) => unknown)?][] = [
    ['--lock-duration <iso>', 'ISO 8601 duration, at most PT5M (default PT1M)'],
    ['--max-delivery-count <n>', 'deliveries before dead-lettering (default 10)', int],
    ['--default-ttl <iso>', 'default message time to live (ISO 8601 duration)'],
    ['--dead-letter-on-expiry', 'dead-letter expired messages'],
  ];
  const receiverProperties = (o: Record<string, unknown>) => ({ lockDuration: o.lockDuration, maxDeliveryCount: o.maxDeliveryCount, defaultMessageTimeToLive: o.defaultTtl, deadLetteringOnMessageExpiration: o.deadLetterOnExpiry });
  entityGroup(sb, 'queue', 'queues of a namespace', SERVICEBUS_API, (c, o) => `${sbNs(c, o)}/queues`, [['--namespace <ns>', 'the namespace']], {
    options: [...receiverOptions, ['--max-size <mb>', 'maximum size in megabytes', int]],
    properties: (o) => ({ ...receiverProperties(o), maxSizeInMegabytes: o.maxSize }),
  }, true);
  entityGroup(sb, 'topic', 'topics of a namespace', SERVICEBUS_API, (c, o) => `${sbNs(c, o)}/topics`, [['--namespace <ns>', 'the namespace']], {
    options: [['--default-ttl <iso>', 'default message time to live (ISO 8601 duration)'], ['--max-size <mb>', 'maximum size in megabytes', int]],
    properties: (o) => ({ defaultMessageTimeToLive: o.defaultTtl, maxSizeInMegabytes: o.maxSize }),
  }, true);
  entityGroup(sb, 'subscription', 'subscriptions of a topic', SERVICEBUS_API, (c, o) => `${sbNs(c, o)}/topics/${o.topic}/subscriptions`, [['--namespace <ns>', 'the namespace'], ['--topic <name>', 'the topic']], {
    options: receiverOptions,
    properties: receiverProperties,
  }, false);
  entityGroup(sb, 'rule', 'filter rules of a subscription', SERVICEBUS_API, (c, o) => `${sbNs(c, o)}/topics/${o.topic}/subscriptions/${o.subscription}/rules`, [['--namespace <ns>', 'the namespace'], ['--topic <name>', 'the topic'], ['--subscription <name>', 'the subscription']], {
    options: [
      ['--sql <expression>', "a SQL filter, e.g. \"severity >= 3 AND sys.Label LIKE 'disk%'\""],
      ['--correlation-id <id>', 'a correlation filter on the correlation id'],
      ['--to <to>', "a correlation filter on 'to'"],
      ['--label <label>', 'a correlation filter on the subject (label)'],
    ],
    properties: (o) => {
      const correlation = definedOnly({ correlationId: o.correlationId, to: o.to, label: o.label });
      if (o.sql !== undefined && Object.keys(correlation).length) throw new CliError('Give --sql or correlation options, not both');
      if (Object.keys(correlation).length) return { filterType: 'CorrelationFilter', correlationFilter: correlation };
      return { filterType: 'SqlFilter', sqlFilter: { sqlExpression: o.sql ?? '1=1' } };
    },
  }, false);
}
