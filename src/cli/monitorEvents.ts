import type { Command } from 'commander';
import { databasePath } from '../info.js';
import { openEventLogReadOnly } from '../store/sqlite/eventLogReader.js';
import type { StoredEvent } from '../store/index.js';
import { cliConfig, CliError, type GlobalOptions } from './context.js';

const POLL_MS = 200;
const BATCH = 500;

/**
 * `az iot hub monitor-events`: tails the device-to-cloud event log from now on.
 * It reads the data directory's database read-only and polls, rather than asking the hub over
 * the network: the log is already durable and ordered there, WAL readers never block the hub's
 * commits, and a tail costs the hub nothing (no connection, no fan-out on its event loop). The
 * price is that it runs on the hub's machine; the Event Hub-compatible endpoint (issue 4) is the
 * remote way.
 */
export function monitorEventsCommand(program: Command): void {
  program
    .command('monitor-events')
    .description('print device-to-cloud messages as they arrive (reads the data directory)')
    .option('--device <id>', 'only this device (a trailing * matches a prefix)')
    .option('--properties', 'include system and application properties')
    .option('--timeout <seconds>', 'stop after this many seconds (0: run until interrupted)', '0')
    .action(async (opts) => {
      const config = cliConfig(program.opts<GlobalOptions>());
      const opened = openEventLogReadOnly(databasePath(config.dataDir));
      if (!opened) throw new CliError(`No event log in ${config.dataDir}: start the hub there first`);
      const { log } = opened;
      const matches = deviceFilter(opts.device);
      const next = new Map<number, number>();
      for (let p = 0; p < opened.partitions(); p++) next.set(p, (await log.partitionInfo(p)).lastSequenceNumber + 1);
      process.stderr.write(`Monitoring ${config.dataDir} (${next.size} partitions); Ctrl-C to stop\n`);

      let stop = false;
      const timeout = Number(opts.timeout);
      if (timeout > 0) setTimeout(() => (stop = true), timeout * 1000).unref();
      process.once('SIGINT', () => (stop = true));
      while (!stop) {
        let seen = 0;
        for (const [partition, from] of next) {
          const events = await log.read(partition, { sequenceNumber: from, inclusive: true }, BATCH);
          for (const e of events) {
            if (matches(String(e.systemProperties['iothub-connection-device-id'] ?? ''))) process.stdout.write(format(e, !!opts.properties) + '\n');
          }
          if (events.length > 0) next.set(partition, events[events.length - 1]!.sequenceNumber + 1);
          seen += events.length;
        }
        if (seen === 0) await new Promise((r) => setTimeout(r, POLL_MS));
      }
      opened.close();
    });
}

function deviceFilter(pattern: string | undefined): (id: string) => boolean {
  if (!pattern) return () => true;
  if (pattern.endsWith('*')) return (id) => id.startsWith(pattern.slice(0, -1));
  return (id) => id === pattern;
}

/** The shape `az iot hub monitor-events` prints. */
function format(e: StoredEvent, withProperties: boolean): string {
  const sys = e.systemProperties;
  const text = e.body.toString('utf8');
  let payload: unknown = text;
  try {
    payload = JSON.parse(text);
  } catch {
    // not JSON: print as text
  }
  const event: Record<string, unknown> = {
    origin: sys['iothub-connection-device-id'],
    module: sys['iothub-connection-module-id'] ?? '',
    interface: '',
    component: '',
    payload,
  };
  if (withProperties) {
    const annotations = Object.fromEntries(Object.entries(sys).filter(([k]) => k.startsWith('iothub-')));
    const system = Object.fromEntries(Object.entries(sys).filter(([k]) => !k.startsWith('iothub-')));
    event.annotations = { ...annotations, 'x-opt-sequence-number': e.sequenceNumber, 'x-opt-offset': e.offset, 'x-opt-enqueued-time': e.enqueuedTime };
    event.properties = { system, application: e.properties };
  }
  return JSON.stringify({ event }, null, 4);
}
