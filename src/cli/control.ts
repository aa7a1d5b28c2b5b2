/**
 * CLI commands that go through the control plane's ARM REST API of the running hub, signed in as
 * the local administrator (client credentials from the data directory, like `az login
 * --service-principal`): `identity`, `role assignment`, `resource show`.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { Command } from 'commander';
import type { Config } from '../config/index.js';
import { readRuntime, type RuntimeFile } from '../info.js';
import { caPaths } from '../protocols/tls/paths.js';
import { openControlDatabase } from '../store/sqlite/control.js';
import { openSqliteIdentityStore } from '../store/sqlite/identity.js';
import { ensureTenancy } from '../identity/tenancy.js';
import type { Tenancy } from '../identity/types.js';
import { cliConfig, CliError, type GlobalOptions } from './context.js';

/** The api-version the CLI uses per resource type (lower-case `namespace/type`). */
const API_VERSIONS: Record<string, string> = {
  'microsoft.devices/iothubs': '2023-06-30',
  'microsoft.devices/provisioningservices': '2022-12-12',
  'microsoft.managedidentity/userassignedidentities': '2023-01-31',
  'microsoft.authorization/roleassignments': '2022-04-01',
  'microsoft.authorization/roledefinitions': '2022-04-01',
  'microsoft.resources/resourcegroups': '2025-04-01',
  'microsoft.eventhub/namespaces': '2024-01-01',
  'microsoft.servicebus/namespaces': '2021-11-01',
};

export class ArmClient {
  private token?: string;
  private constructor(
    private readonly runtime: RuntimeFile,
    private readonly ca: string,
    readonly tenancy: Tenancy,
  ) {}

  static async connect(config: Config): Promise<ArmClient> {
    const runtime = readRuntime(config.dataDir);
    if (!runtime) throw new CliError(`No hub is running on data directory ${config.dataDir}: start one with 'fleethub start'`);
    const caPath = caPaths(config.dataDir).cert;
    if (!existsSync(caPath)) throw new CliError(`No CA certificate at ${caPath}`);
    const db = openControlDatabase(config.dataDir);
    try {
      return new ArmClient(runtime, readFileSync(caPath, 'utf8'), await ensureTenancy(openSqliteIdentityStore(db)));
    } finally {
      db.close();
    }
  }

  get subscriptionScope() {
    return `/subscriptions/${this.tenancy.subscriptionId}`;
  }

  private send(method: string, path: string, body: string | undefined, headers: Record<string, string>): Promise<{ status: number; json: any }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: this.runtime.hostName, port: this.runtime.ports.https, method, path, ca: this.ca, headers: { ...headers, ...(body ? { 'content-length': Buffer.byteLength(body) } : {}) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = text;
          }
          resolve({ status: res.statusCode ?? 500, json });
        });
      });
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    });
  }

  /** The administrator's management token, from Fleethub's token endpoint (client credentials). */
  private async bearer(): Promise<string> {
    if (this.token) return this.token;
    const a = this.tenancy.administrator;
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: a.clientId, client_secret: a.clientSecret, scope: 'https://management.azure.com/.default' }).toString();
    const r = await this.send('POST', `/${this.tenancy.tenantId}/oauth2/v2.0/token`, form, { 'content-type': 'application/x-www-form-urlencoded' });
    if (r.status !== 200) throw new CliError(`Signing in as the administrator failed: ${r.status} ${JSON.stringify(r.json)}`);
    this.token = r.json.access_token as string;
    return this.token;
  }

  /** An ARM call; ARM errors become CliErrors with ARM's code and message. */
  async call(method: string, path: string, apiVersion: string, body?: unknown, headers: Record<string, string> = {}): Promise<any> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const r = await this.send(method, `${path}${path.includes('?') ? '&' : '?'}api-version=${apiVersion}`, payload, {
      ...headers,
      authorization: `Bearer ${await this.bearer()}`,
      ...(payload ? { 'content-type': 'application/json' } : {}),
    });
    if (r.status >= 400) throw new CliError(r.json?.error ? `${r.json.error.code}: ${r.json.error.message}` : `${r.status} ${JSON.stringify(r.json)}`);
    return r.json;
  }

  /** The api-version for a resource id (by its last provider type). */
  static apiVersionOf(id: string): string {
    const s = id.split('/').filter(Boolean);
    const i = s.map((x) => x.toLowerCase()).lastIndexOf('providers');
    if (i < 0) return s.length <= 2 ? '2022-12-01' : API_VERSIONS['microsoft.resources/resourcegroups']!;
    const key = `${s[i + 1]}/${s[i + 2]}`.toLowerCase();
    const v = API_VERSIONS[key];
    if (!v) throw new CliError(`Unknown resource type '${s[i + 1]}/${s[i + 2]}'`);
    return v;
  }
}

const print = (value: unknown) => process.stdout.write(JSON.stringify(value, null, 2) + '\n');

export function controlCommands(program: Command): void {
  const client = async () => ArmClient.connect(cliConfig(program.opts<GlobalOptions>()));
  const group = (c: ArmClient, rg?: string) => rg ?? c.tenancy.defaultResourceGroup;
  const uaiId = (c: ArmClient, rg: string | undefined, name: string) =>
    name.startsWith('/') ? name : `${c.subscriptionScope}/resourceGroups/${group(c, rg)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;
  const hubId = async (c: ArmClient, rg: string | undefined, hub: string | undefined) => {
    const name = hub ?? readRuntime(cliConfig(program.opts<GlobalOptions>()).dataDir)?.hubName;
    return `${c.subscriptionScope}/resourceGroups/${group(c, rg)}/providers/Microsoft.Devices/IotHubs/${name}`;
  };

  program
    .command('resource')
    .description('ARM resources of the control plane')
    .command('show')
    .description("a resource's JSON, as `az resource show` prints it")
    .option('--ids <id>', 'the resource id')
    .option('--resource-group <rg>', 'its resource group (default: the default group)')
    .option('--resource-type <type>', 'namespace/type, e.g. Microsoft.Devices/IotHubs')
    .option('--name <name>', 'its name')
    .option('--api-version <v>', 'the api-version (default: one Fleethub serves for the type)')
    .action(async (opts) => {
      const c = await client();
      let id = opts.ids as string | undefined;
      if (!id) {
        if (!opts.resourceType || !opts.name) throw new CliError('Give --ids, or --resource-type and --name');
        id = `${c.subscriptionScope}/resourceGroups/${group(c, opts.resourceGroup)}/providers/${opts.resourceType}/${opts.name}`;
      }
      print(await c.call('GET', id, opts.apiVersion ?? ArmClient.apiVersionOf(id)));
    });

  const identity = program.command('identity').description('managed identities: user-assigned identity resources, and the identities of a hub');
  identity
    .command('create <name>')
    .description('create a user-assigned identity')
    .option('--resource-group <rg>')
    .action(async (name: string, opts) => {
      const c = await client();
      print(await c.call('PUT', uaiId(c, opts.resourceGroup, name), API_VERSIONS['microsoft.managedidentity/userassignedidentities']!, { location: c.tenancy.location }));
    });
  identity
    .command('list')
    .description('list user-assigned identities')
    .option('--resource-group <rg>')
    .action(async (opts) => {
      const c = await client();
      const scope = opts.resourceGroup ? `${c.subscriptionScope}/resourceGroups/${opts.resourceGroup}` : c.subscriptionScope;
      print((await c.call('GET', `${scope}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`, API_VERSIONS['microsoft.managedidentity/userassignedidentities']!)).value);
    });
  identity
    .command('delete <name>')
    .description('delete a user-assigned identity (by name or resource id)')
    .option('--resource-group <rg>')
    .action(async (name: string, opts) => {
      const c = await client();
      await c.call('DELETE', uaiId(c, opts.resourceGroup, name), API_VERSIONS['microsoft.managedidentity/userassignedidentities']!);
      process.stdout.write(`Deleted ${uaiId(c, opts.resourceGroup, name)}\n`);
    });
  const hubIdentity = (verb: 'assign' | 'remove') =>
    identity
      .command(verb)
      .description(`${verb} the system-assigned identity or user-assigned identities of a hub`)
      .option('--hub <name>', 'the hub (default: the primary hub)')
      .option('--resource-group <rg>')
      .option('--system', 'the system-assigned identity')
      .option('--user <ids...>', 'user-assigned identities (names in the default group, or resource ids)')
      .action(async (opts) => {
        if (!opts.system && !opts.user) throw new CliError('Give --system and/or --user ID...');
        const c = await client();
        const id = await hubId(c, opts.resourceGroup, opts.hub);
        const hub = await c.call('GET', id, API_VERSIONS['microsoft.devices/iothubs']!);
        let system = String(hub.identity?.type ?? 'None').includes('SystemAssigned');
        const users = new Map<string, object>(Object.keys(hub.identity?.userAssignedIdentities ?? {}).map((k) => [k.toLowerCase(), { id: k }]));
        const named = ((opts.user as string[] | undefined) ?? []).map((u) => uaiId(c, undefined, u));
        if (opts.system) system = verb === 'assign';
        for (const u of named) {
          if (verb === 'assign') users.set(u.toLowerCase(), { id: u });
          else if (!users.delete(u.toLowerCase())) throw new CliError(`The identity '${u}' is not attached to the hub`);
        }
        const ids = [...users.values()].map((x) => (x as { id: string }).id);
        const type = system && ids.length ? 'SystemAssigned, UserAssigned' : system ? 'SystemAssigned' : ids.length ? 'UserAssigned' : 'None';
        const updated = await c.call('PUT', id, API_VERSIONS['microsoft.devices/iothubs']!, {
          ...hub,
          identity: { type, ...(ids.length ? { userAssignedIdentities: Object.fromEntries(ids.map((x) => [x, {}])) } : {}) },
        });
        print(updated.identity);
      });
  hubIdentity('assign');
  hubIdentity('remove');

  const assignment = program.command('role').description('Azure RBAC').command('assignment').description('role assignments');
  const roleId = async (c: ArmClient, role: string) => {
    const defs = (await c.call('GET', `${c.subscriptionScope}/providers/Microsoft.Authorization/roleDefinitions`, API_VERSIONS['microsoft.authorization/roledefinitions']!)).value as { id: string; name: string; properties: { roleName: string } }[];
    const found = defs.find((d) => d.name.toLowerCase() === role.split('/').pop()!.toLowerCase() || d.properties.roleName.toLowerCase() === role.toLowerCase());
    if (!found) throw new CliError(`No role definition named '${role}'`);
    return found.id;
  };
  assignment
    .command('create')
    .requiredOption('--role <role>', 'role name or id')
    .requiredOption('--assignee <principalId>', 'the principal (object) id')
    .option('--scope <scope>', 'the scope (default: the subscription)')
    .action(async (opts) => {
      const c = await client();
      const scope = opts.scope ?? c.subscriptionScope;
      print(
        await c.call('PUT', `${scope.replace(/\/+$/, '')}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}`, API_VERSIONS['microsoft.authorization/roleassignments']!, {
          properties: { roleDefinitionId: await roleId(c, opts.role), principalId: opts.assignee, principalType: 'ServicePrincipal' },
        }),
      );
    });
  assignment
    .command('list')
    .option('--scope <scope>', 'the scope (default: the subscription)')
    .option('--assignee <principalId>')
    .action(async (opts) => {
      const c = await client();
      const scope = opts.scope ?? c.subscriptionScope;
      const filter = opts.assignee ? `?$filter=${encodeURIComponent(`principalId eq '${opts.assignee}'`)}` : '';
      print((await c.call('GET', `${scope.replace(/\/+$/, '')}/providers/Microsoft.Authorization/roleAssignments${filter}`, API_VERSIONS['microsoft.authorization/roleassignments']!)).value);
    });
  assignment
    .command('delete')
    .option('--ids <id>', 'the role assignment id')
    .option('--role <role>')
    .option('--assignee <principalId>')
    .option('--scope <scope>')
    .action(async (opts) => {
      const c = await client();
      let ids: string[] = opts.ids ? [opts.ids] : [];
      if (!opts.ids) {
        if (!opts.role || !opts.assignee) throw new CliError('Give --ids, or --role and --assignee (and --scope)');
        const scope = (opts.scope ?? c.subscriptionScope).replace(/\/+$/, '');
        const role = (await roleId(c, opts.role)).split('/').pop()!.toLowerCase();
        const all = (await c.call('GET', `${scope}/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()`, API_VERSIONS['microsoft.authorization/roleassignments']!)).value as { id: string; properties: { principalId: string; roleDefinitionId: string; scope: string } }[];
        ids = all
          .filter((a) => a.properties.scope.toLowerCase() === scope.toLowerCase() && a.properties.principalId.toLowerCase() === String(opts.assignee).toLowerCase() && a.properties.roleDefinitionId.toLowerCase().endsWith(role))
          .map((a) => a.id);
        if (!ids.length) throw new CliError('No such role assignment');
      }
      for (const id of ids) await c.call('DELETE', id, API_VERSIONS['microsoft.authorization/roleassignments']!);
      process.stdout.write(ids.map((id) => `Deleted ${id}\n`).join(''));
    });
}
