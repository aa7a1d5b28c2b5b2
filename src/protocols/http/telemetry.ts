import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errors } from '../../core/errors.js';
import type { Authorizer } from '../../hub/auth/authorizer.js';
import type { AppendNotifier } from '../../hub/eventhub/appends.js';
import { partitionFor } from '../../hub/messaging/eventLogWriter.js';
import type { EventLog, EventPosition, StoredEvent } from '../../store/eventLog.js';
import { guard } from './common.js';

export interface TelemetryApiDeps {
  eventLog: EventLog;
  appends: AppendNotifier;
  partitions: number;
  authorizer: Authorizer;
  /** How often an idle stream sends an SSE comment, so that proxies keep it open (ms). */
  keepAliveMs?: number;
}

/** One device-to-cloud message as the live view streams it. */
export interface TelemetryEvent {
  deviceId: string;
  moduleId?: string;
  partition: number;
  sequenceNumber: number;
  enqueuedTime: string;
  systemProperties: Record<string, string>;
  properties: Record<string, string>;
  /** The body as UTF-8 text (what devices send as JSON), or base64 when it is not valid UTF-8. */
  body: string;
  bodyEncoding: 'utf8' | 'base64';
}

/**
 * Fleethub's extension for live views (the portal, `curl -N`): device-to-cloud messages read
 * straight from the event log, so that watching telemetry occupies none of any consumer group's
 * five receiver slots. `GET /fleethub/telemetry?from=now|ISO time&deviceId=…` answers with
 * server-sent events; `GET /fleethub/telemetry/rate` counts the messages of the last minute.
 * Authorized like the service API: ServiceConnect by SAS, or a data role that grants
 * `Microsoft.Devices/IotHubs/telemetry/read` (IoT Hub Data Reader and Data Contributor do).
 */
export function telemetryApi(deps: TelemetryApiDeps) {
  const auth = guard(deps.authorizer);
  return async (app: FastifyInstance) => {
    app.get('/fleethub/telemetry/rate', async (req) => {
      await auth(req, 'ServiceConnect');
      const since = Date.now() - 60_000;
      let count = 0;
      for (let p = 0; p < deps.partitions; p++) {
        const info = await deps.eventLog.partitionInfo(p);
        if (info.isEmpty || info.lastEnqueuedTime < since) continue;
        const [first] = await deps.eventLog.read(p, { enqueuedTime: since }, 1);
        if (first) count += info.lastSequenceNumber - first.sequenceNumber + 1;
      }
      return { messagesPerMinute: count, partitions: deps.partitions };
    });

    app.get('/fleethub/telemetry', async (req, reply) => {
      await auth(req, 'ServiceConnect');
      const { from, deviceId } = parseQuery(req);
      const partitions = deviceId ? [partitionFor(deviceId, deps.partitions)] : [...Array(deps.partitions).keys()];
      // Where each partition's reading starts: after its last event for "now", else at the time.
      const positions = new Map<number, EventPosition>();
      for (const p of partitions) {
        if (from === 'now') {
          const info = await deps.eventLog.partitionInfo(p);
          positions.set(p, { sequenceNumber: info.lastSequenceNumber, inclusive: false });
        } else {
          positions.set(p, { enqueuedTime: from });
        }
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
      });
      res.write(': fleethub telemetry\n\n');
      let closed = false;
      let wake: (() => void) | undefined;
      const pending = new Set<number>(partitions);
      const unsubscribe = partitions.map((p) =>
        deps.appends.subscribe(p, () => {
          pending.add(p);
          wake?.();
        }),
      );
      const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), deps.keepAliveMs ?? 15_000);
      const stop = () => {
        closed = true;
        clearInterval(keepAlive);
        for (const u of unsubscribe) u();
        wake?.();
      };
      req.raw.on('close', stop);
      res.on('error', stop);
      try {
        while (!closed) {
          if (pending.size === 0) await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          const due = [...pending];
          pending.clear();
          for (const p of due) {
            for (;;) {
              const batch = await deps.eventLog.read(p, positions.get(p)!, 200);
              if (batch.length === 0 || closed) break;
              positions.set(p, { sequenceNumber: batch[batch.length - 1]!.sequenceNumber, inclusive: false });
              const lines = batch
                .filter((e) => !deviceId || e.systemProperties['iothub-connection-device-id'] === deviceId)
                .map((e) => `id: ${e.partition}:${e.sequenceNumber}\ndata: ${JSON.stringify(toEvent(e))}\n\n`);
              if (lines.length) res.write(lines.join(''));
              if (batch.length < 200) break;
            }
          }
        }
      } catch (e) {
        req.log.error({ err: e }, 'telemetry stream failed');
      } finally {
        stop();
        res.end();
      }
    });
  };
}

function parseQuery(req: FastifyRequest): { from: number | 'now'; deviceId?: string } {
  const q = req.query as Record<string, unknown>;
  const rawFrom = q.from ?? 'now';
  let from: number | 'now';
  if (rawFrom === 'now') from = 'now';
  else if (typeof rawFrom === 'string' && /^\d+$/.test(rawFrom)) from = Number(rawFrom);
  else if (typeof rawFrom === 'string' && !Number.isNaN(Date.parse(rawFrom))) from = Date.parse(rawFrom);
  else throw errors.argument("from must be 'now', an ISO 8601 time or milliseconds since the epoch");
  const deviceId = q.deviceId;
  if (deviceId !== undefined && (typeof deviceId !== 'string' || deviceId.length === 0 || deviceId.length > 128)) {
    throw errors.argument('deviceId must be a device id of 1 to 128 characters');
  }
  return { from, ...(typeof deviceId === 'string' ? { deviceId } : {}) };
}

function toEvent(e: StoredEvent): TelemetryEvent {
  const text = e.body.toString('utf8');
  const utf8 = Buffer.from(text, 'utf8').equals(e.body);
  const moduleId = e.systemProperties['iothub-connection-module-id'];
  return {
    deviceId: e.systemProperties['iothub-connection-device-id'] ?? '',
    ...(moduleId ? { moduleId } : {}),
    partition: e.partition,
    sequenceNumber: e.sequenceNumber,
    enqueuedTime: new Date(e.enqueuedTime).toISOString(),
    systemProperties: e.systemProperties,
    properties: e.properties,
    body: utf8 ? text : e.body.toString('base64'),
    bodyEncoding: utf8 ? 'utf8' : 'base64',
  };
}
