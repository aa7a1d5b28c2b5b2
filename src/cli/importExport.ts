import type { Command } from 'commander';
import { cliConfig, CliError, HubClient, type GlobalOptions } from './context.js';

interface JobProperties {
  jobId: string;
  status: string;
  progress: number;
  failureReason?: string;
}

/** A one-line progress bar on a terminal; plain lines otherwise. */
function progressBar(label: string) {
  const tty = process.stderr.isTTY;
  let last = -1;
  return (job: JobProperties) => {
    if (job.progress === last && job.status !== 'completed') return;
    last = job.progress;
    const width = 30;
    const filled = Math.round((job.progress / 100) * width);
    const line = `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(job.progress).padStart(3)}% ${job.status}`;
    if (tty) process.stderr.write(`\r${line}`);
    else process.stderr.write(`${line}\n`);
  };
}

/** Creates the job through the running hub's REST API, then follows it until it finishes. */
async function runJob(program: Command, label: string, request: Record<string, unknown>, json: boolean): Promise<void> {
  const hub = await HubClient.connect(cliConfig(program.opts<GlobalOptions>()));
  const { body: created } = await hub.call<JobProperties>('POST', '/jobs/create', request);
  const show = progressBar(label);
  let job = created;
  for (;;) {
    show(job);
    if (['completed', 'failed', 'cancelled'].includes(job.status)) break;
    await new Promise((r) => setTimeout(r, 250));
    job = (await hub.call<JobProperties>('GET', `/jobs/${encodeURIComponent(created.jobId)}`)).body;
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  if (json) process.stdout.write(JSON.stringify(job, null, 2) + '\n');
  if (job.status !== 'completed') throw new CliError(`${label} ${job.status}${job.failureReason ? `: ${job.failureReason}` : ''}`);
}

function identityOptions(opts: { identity?: string | boolean }): Record<string, unknown> {
  if (opts.identity === undefined || opts.identity === false) return {};
  return { storageAuthenticationType: 'identityBased', ...(typeof opts.identity === 'string' ? { identity: { userAssignedIdentity: opts.identity } } : {}) };
}

/** `fleethub export` / `fleethub import`: bulk identity registry jobs, with a progress bar. */
export function importExportCommands(program: Command): void {
  program
    .command('export')
    .description('export the identity registry to devices.txt in a blob container (talks to the running hub)')
    .requiredOption('--container-uri <uri>', 'the output container (with a SAS, unless --identity)')
    .option('--exclude-keys', 'leave the keys out')
    .option('--blob-name <name>', 'the output blob', 'devices.txt')
    .option('--identity [resourceId]', "as the hub's identity: system-assigned, or the user-assigned one named")
    .option('--json', 'print the finished job as JSON')
    .action(async (opts) => {
      await runJob(program, 'export', { type: 'export', outputBlobContainerUri: opts.containerUri, excludeKeysInExport: Boolean(opts.excludeKeys), outputBlobName: opts.blobName, ...identityOptions(opts) }, Boolean(opts.json));
    });
  program
    .command('import')
    .description('import devices.txt from a blob container into the identity registry (talks to the running hub)')
    .requiredOption('--container-uri <uri>', 'the input container (with a SAS, unless --identity)')
    .option('--output-uri <uri>', 'where importErrors.log goes (default: the input container)')
    .option('--blob-name <name>', 'the input blob', 'devices.txt')
    .option('--identity [resourceId]', "as the hub's identity: system-assigned, or the user-assigned one named")
    .option('--json', 'print the finished job as JSON')
    .action(async (opts) => {
      await runJob(
        program,
        'import',
        { type: 'import', inputBlobContainerUri: opts.containerUri, outputBlobContainerUri: opts.outputUri ?? opts.containerUri, inputBlobName: opts.blobName, ...identityOptions(opts) },
        Boolean(opts.json),
      );
    });
}
