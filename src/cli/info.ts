import type { Command } from 'commander';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { serviceBusArea } from '../namespaces/serviceBus/area.js';
import { extraHubConfig, hubInfo, readRuntime, type HubInfo } from '../info.js';
import { checkHubs } from '../config/index.js';
import { describeDps } from '../dps/setup.js';
import { openSqliteDpsStore } from '../store/sqlite/dps.js';
import { cliConfig, withStore, type GlobalOptions } from './context.js';
import { EventHubsNamespaces } from '../namespaces/eventHubs/namespaces.js';
import { applyEventHubsConfig } from '../namespaces/eventHubs/area.js';
import { SqliteEventHubsStore } from '../store/sqlite/eventHubs.js';
import { identityArea } from '../identity/index.js';
import { managementBaseUrl, withIdentityInfo } from '../identity/info.js';
import { controlDatabasePath, openControlDatabase } from '../store/sqlite/control.js';
import { openSqliteControlResources } from '../store/sqlite/controlResources.js';
import { EVENTHUB_NAMESPACES_TYPE, SERVICEBUS_NAMESPACES_TYPE } from '../control/namespaces/common.js';

/** Namespaces the control plane has records of: the configuration seeds only the others (the control plane writes these). */
function recordedNamespaces(dataDir: string): (type: string) => Set<string> {
  if (!existsSync(controlDatabasePath(dataDir))) return () => new Set();
  const db = openControlDatabase(dataDir);
  try {
    const resources = openSqliteControlResources(db).resources;
    const byType = new Map([EVENTHUB_NAMESPACES_TYPE, SERVICEBUS_NAMESPACES_TYPE].map((t) => [t, new Set(resources.list({ type: t }).map((r) => r.name.toLowerCase()))]));
    return (type) => byType.get(type) ?? new Set();
  } finally {
    db.close();
  }
}

export function infoCommand(program: Command): void {
  program
    .command('info')
    .description('print the hub host name, connection strings, CA path and ports (works while the hub runs)')
    .option('--json', 'one JSON object')
    .action(async (opts) => {
      const config = cliConfig(program.opts<GlobalOptions>());
      // A running hub's host name wins over the configured one, for the DPS as for the hub.
      const dpsView = { ...config, hostName: readRuntime(config.dataDir)?.hostName ?? config.hostName };
      checkHubs(config);
      // Every hub of the process, each from its own data directory (created, with its policies, on first use).
      const hubs: HubInfo[] = [];
      for (const hub of config.hubs) {
        const hubConfig = extraHubConfig(config, hub);
        mkdirSync(hubConfig.dataDir, { recursive: true, mode: 0o700 });
        // A hub without an address of its own is found by its host name (which must resolve to the primary's address).
        const byName = hub.bind === undefined;
        hubs.push(await withStore(hubConfig, async (s) => hubInfo(hubConfig, await s.policies.list(), undefined, { caDataDir: config.dataDir, byName })));
      }
      // Service Bus namespaces (keys made on first use, as the hub's policies are), from <dataDir>/servicebus.db.
      const recorded = recordedNamespaces(config.dataDir);
      const unrecorded = <T extends { name: string }>(list: T[], type: string) => list.filter((n) => !recorded(type).has(n.name.toLowerCase()));
      const serviceBus =
        config.serviceBusNamespaces.length || existsSync(join(config.dataDir, 'servicebus.db'))
          ? serviceBusArea({ dataDir: config.dataDir, namespaces: unrecorded(config.serviceBusNamespaces, SERVICEBUS_NAMESPACES_TYPE), timerMs: 60_000, logger: pino({ level: 'silent' }) })
          : undefined;
      const basic = await withStore(config, async (s) => {
        // Event Hubs namespaces live in the primary hub's database (keys made on first use, as the hub's policies are).
        const eventHubs = new EventHubsNamespaces(new SqliteEventHubsStore(s.db), s.eventLogs);
        await applyEventHubsConfig(eventHubs, unrecorded(config.eventHubsNamespaces, EVENTHUB_NAMESPACES_TYPE));
        const withEventHubs = eventHubs.listNamespaces().length > 0 ? { eventHubs } : {};
        return hubInfo(config, await s.policies.list(), await describeDps(openSqliteDpsStore(s.db), dpsView), { hubs, ...(serviceBus ? { serviceBus: serviceBus.namespaces } : {}), ...withEventHubs });
      }).finally(() => serviceBus?.close());
      const identity = await identityArea({ dataDir: config.dataDir });
      const baseUrl = managementBaseUrl(basic.hubHostName, basic.ports.https);
      const info = { ...(await withIdentityInfo(basic, identity, baseUrl).finally(() => identity.close())), portalUrl: `${baseUrl}/portal/` };
      if (opts.json) {
        process.stdout.write(JSON.stringify(info, null, 2) + '\n');
        return;
      }
      const print = (o: object, prefix = '') => {
        for (const [k, v] of Object.entries(o)) {
          if (k === 'hubs' || k === 'serviceBusNamespaces' || k === 'eventHubsNamespaces') continue;
          process.stdout.write(`${(prefix + k).padEnd(36)} ${typeof v === 'object' ? JSON.stringify(v) : v}\n`);
        }
      };
      print(info);
      (info.hubs ?? []).forEach((hub, i) => print(hub, `hubs[${i}].`));
      (info.serviceBusNamespaces ?? []).forEach((ns, i) => print(ns, `serviceBusNamespaces[${i}].`));
      (info.eventHubsNamespaces ?? []).forEach((ns, i) => print(ns, `eventHubsNamespaces[${i}].`));
    });
}
