/**
 * `fleethub deployment create|show|list`: ARM template deployments through the control plane's REST
 * API, signed in as the administrator (like `az deployment group create|show|list`).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import JSON5 from 'json5';
import { ArmClient } from './control.js';
import { cliConfig, CliError, type GlobalOptions } from './context.js';

const API = '2022-09-01';
const print = (value: unknown) => process.stdout.write(JSON.stringify(value, null, 2) + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `k=v` values typed as the template declares the parameter (as az does); `@file` reads a parameters file. */
export function parseParameters(args: string[], template: Record<string, unknown>): Record<string, { value: unknown }> {
  const defs = (template.parameters ?? {}) as Record<string, { type?: string }>;
  const typeOf = (name: string) => Object.entries(defs).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1]?.type?.toLowerCase();
  const out: Record<string, { value: unknown }> = {};
  for (const arg of args) {
    if (arg.startsWith('@')) {
      let file: Record<string, unknown>;
      try {
        file = JSON5.parse(readFileSync(arg.slice(1), 'utf8')) as Record<string, unknown>;
      } catch (e) {
        throw new CliError(`Cannot read the parameters file ${arg.slice(1)}: ${(e as Error).message}`);
      }
      const params = (file.parameters ?? file) as Record<string, unknown>;
      for (const [k, v] of Object.entries(params)) out[k] = v !== null && typeof v === 'object' && 'value' in v ? (v as { value: unknown }) : { value: v };
      continue;
    }
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new CliError(`Parameters are NAME=VALUE or @FILE; got '${arg}'`);
    const name = arg.slice(0, eq);
    const raw = arg.slice(eq + 1);
    const type = typeOf(name);
    let value: unknown = raw;
    if (type === 'int') {
      value = Number(raw);
      if (!Number.isInteger(value)) throw new CliError(`The parameter '${name}' is an int; got '${raw}'`);
    } else if (type === 'bool') {
      if (!/^(true|false)$/i.test(raw)) throw new CliError(`The parameter '${name}' is a bool; got '${raw}'`);
      value = raw.toLowerCase() === 'true';
    } else if (type === 'object' || type === 'array' || type === 'secureobject') {
      try {
        value = JSON5.parse(raw);
      } catch {
        throw new CliError(`The parameter '${name}' is an ${type}: give it as JSON; got '${raw}'`);
      }
    }
    out[name] = { value };
  }
  return out;
}

interface Operation {
  operationId: string;
  properties: { provisioningState: string; targetResource: { resourceType: string; resourceName: string }; statusMessage?: { error?: { code: string; message: string } } };
}
interface ErrorBody {
  code?: string;
  message?: string;
  target?: string;
  details?: ErrorBody[];
}
/** The innermost errors (a nested deployment's failure wraps its resource's). */
const leaves = (e: ErrorBody): ErrorBody[] => (e.details?.length ? e.details.flatMap(leaves) : e.code ? [e] : []);

export function deploymentCommand(program: Command): void {
  const client = async () => ArmClient.connect(cliConfig(program.opts<GlobalOptions>()));
  const scopeOf = (c: ArmClient, rg: string | undefined) => `${c.subscriptionScope}/resourceGroups/${rg ?? c.tenancy.defaultResourceGroup}/providers/Microsoft.Resources/deployments`;
  const deployment = program.command('deployment').description('ARM template deployments (Microsoft.Resources/deployments) in a resource group');

  deployment
    .command('create')
    .description('deploy an ARM template (Incremental), printing progress, then the deployment')
    .requiredOption('--template-file <file>', 'the template (JSON)')
    .option('--parameters <params...>', 'NAME=VALUE pairs or @parameters.json')
    .option('--resource-group <rg>', 'the resource group (default: the default group)')
    .option('--name <name>', 'the deployment name (default: the template file name)')
    .action(async (opts) => {
      let template: Record<string, unknown>;
      try {
        template = JSON5.parse(readFileSync(opts.templateFile as string, 'utf8')) as Record<string, unknown>;
      } catch (e) {
        throw new CliError(`Cannot read the template ${opts.templateFile}: ${(e as Error).message}`);
      }
      const parameters = parseParameters((opts.parameters as string[] | undefined) ?? [], template);
      const name = (opts.name as string | undefined) ?? basename(opts.templateFile as string).replace(/\.[^.]*$/, '');
      const c = await client();
      const id = `${scopeOf(c, opts.resourceGroup)}/${encodeURIComponent(name)}`;
      const body = { properties: { mode: 'Incremental', template, parameters } };
      await c.call('POST', `${id}/validate`, API, body);
      const started = await c.call('PUT', id, API, body);
      let state = String(started.properties?.provisioningState);
      process.stderr.write(`${name}: ${state}\n`);
      const seen = new Set<string>();
      /** Progress lines: each resource as it finishes, those of nested deployments indented under them. */
      const report = async (deploymentId: string, indent: string) => {
        const ops = (await c.call('GET', `${deploymentId}/operations`, API)).value as Operation[];
        for (const o of ops) {
          const p = o.properties;
          const key = `${deploymentId}:${o.operationId}:${p.provisioningState}`;
          const nested = p.targetResource.resourceType.toLowerCase() === 'microsoft.resources/deployments';
          if (!seen.has(key)) {
            seen.add(key);
            const why = p.statusMessage?.error && !nested ? ` (${p.statusMessage.error.code}: ${p.statusMessage.error.message})` : '';
            process.stderr.write(`${indent}${p.provisioningState.padEnd(9)} ${p.targetResource.resourceType} ${p.targetResource.resourceName}${why}\n`);
          }
          if (nested) await report(`${scopeOf(c, opts.resourceGroup)}/${encodeURIComponent(p.targetResource.resourceName)}`, `${indent}  `).catch(() => undefined);
        }
      };
      for (;;) {
        const d = await c.call('GET', id, API);
        await report(id, '  ');
        const now = String(d.properties?.provisioningState);
        if (now !== state) process.stderr.write(`${name}: ${now}\n`);
        state = now;
        if (state === 'Succeeded' || state === 'Failed') {
          print(d);
          if (state === 'Failed') {
            const detail = leaves(d.properties.error ?? {}).map((x) => `\n  ${x.target ? `${x.target}: ` : ''}${x.code}: ${x.message}`).join('');
            throw new CliError(`The deployment '${name}' failed: ${d.properties.error?.code}: ${d.properties.error?.message}${detail}`);
          }
          return;
        }
        await sleep(200);
      }
    });

  deployment
    .command('show <name>')
    .description("a deployment's JSON (provisioningState, parameters, outputs, error)")
    .option('--resource-group <rg>')
    .action(async (name: string, opts) => {
      const c = await client();
      print(await c.call('GET', `${scopeOf(c, opts.resourceGroup)}/${encodeURIComponent(name)}`, API));
    });

  deployment
    .command('list')
    .description('the deployments of a resource group')
    .option('--resource-group <rg>')
    .action(async (opts) => {
      const c = await client();
      print((await c.call('GET', scopeOf(c, opts.resourceGroup), API)).value);
    });
}
