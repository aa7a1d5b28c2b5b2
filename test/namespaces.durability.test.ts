import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServiceBusClient, type ServiceBusReceivedMessage, type ServiceBusReceiver } from '@azure/service-bus';
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition } from '@azure/event-hubs';
import { freeLoopbackAddress } from './support/hub.js';
import { dataDirWithTestCa, spawnHub } from './support/process.js';
import { eventually } from './support/devices.js';

const cli = fileURLToPath(new URL('../src/cli/index.js', import.meta.url));
const noRetry = { retryOptions: { maxRetries: 0, timeoutInMs: 5000 } };

/**
 * The local Service Bus and Event Hubs namespaces in a Fleethub child process that is SIGKILLed
 * while clients send, receive and complete; restarted on the same data directory, it must have
 * every message whose send resolved, none whose completion was acknowledged, the ones left
 * unsettled back after their locks expire, and every event whose send resolved with unbroken
 * sequence numbers.
 */
describe('durability: Service Bus and Event Hubs namespaces survive SIGKILL of the hub', () => {
  let host: string;
  let dataDir: string;
  let hub: ChildProcess | undefined;

  const startHub = () => spawnHub(dataDir, ['--host-name', host, '--bind', host, '--https-port', '443']);

  before(async () => {
    host = await freeLoopbackAddress();
    dataDir = dataDirWithTestCa('fleethub-ns-durability-');
    const receiverSettings = { lockDuration: 'PT2S', maxDeliveryCount: 100 };
    writeFileSync(
      join(dataDir, 'fleethub.json'),
      JSON.stringify({
        hostName: host,
        bind: host,
        // No embedded storage: nothing here uses it, and it costs a start.
        ports: { storage: 0 },
        serviceBusTimerMs: 50,
        serviceBusNamespaces: [{ name: 'durable-sb', queues: [{ name: 'work', ...receiverSettings }], topics: [{ name: 'news', subscriptions: [{ name: 'all', ...receiverSettings }] }] }],
        eventHubsNamespaces: [{ name: 'durable-eh', eventHubs: [{ name: 'stream', partitionCount: 2 }] }],
      }),
    );
  });
  after(() => {
    hub?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('sends, peek-lock receives and completions, SIGKILL mid-stream, restart: nothing acknowledged is lost or resurrected', async () => {
    hub = await startHub();
    const infoRun = spawnSync(process.execPath, [cli, '--data', dataDir, 'info', '--json'], { cwd: dataDir, encoding: 'utf8' });
    assert.equal(infoRun.status, 0, infoRun.stderr);
    const info = JSON.parse(infoRun.stdout) as { serviceBusNamespaces: { connectionString: string }[]; eventHubsNamespaces: { connectionString: string }[] };
    const sbCs = info.serviceBusNamespaces[0]!.connectionString;
    const ehCs = info.eventHubsNamespaces[0]!.connectionString;
    assert.match(sbCs, new RegExp(`sb://${host.replace(/\./g, '\\.')}/`));

    const entities = ['work', 'news/Subscriptions/all'] as const;
    const sent = new Map<string, Set<string>>(entities.map((e) => [e, new Set()]));
    const completed = new Map<string, Set<string>>(entities.map((e) => [e, new Set()]));
    const held = new Map<string, Set<string>>(entities.map((e) => [e, new Set()]));
    /** Completions asked for: one the hub committed but could not acknowledge before the kill is legitimately gone. */
    const completing = new Map<string, Set<string>>(entities.map((e) => [e, new Set()]));
    const sentEvents = new Set<string>();
    let killed = false;

    const sb = new ServiceBusClient(sbCs, noRetry);
    const eh = new EventHubProducerClient(ehCs, 'stream', noRetry);
    const pumps: Promise<unknown>[] = [];
    // Senders: a window of single sends per entity; a body counts as sent once its send resolved.
    for (const [entity, address] of [['work', 'work'], ['news/Subscriptions/all', 'news']] as const) {
      const sender = sb.createSender(address);
      for (let w = 0; w < 4; w++) {
        pumps.push(
          (async () => {
            for (let n = 0; !killed; n++) {
              const body = `${address}-${w}-${n}`;
              try {
                await sender.sendMessages({ body });
                sent.get(entity)!.add(body);
              } catch {
                return;
              }
            }
          })(),
        );
      }
    }
    // Receivers: peek-lock; every 10th message is left unsettled (it must come back after its lock
    // expires), the others completed; a completion counts once the hub acknowledged it.
    const receivers: ServiceBusReceiver[] = [];
    for (const entity of entities) {
      const receiver = entity === 'work' ? sb.createReceiver('work') : sb.createReceiver('news', 'all');
      receivers.push(receiver);
      pumps.push(
        (async () => {
          let i = 0;
          while (!killed) {
            let batch: ServiceBusReceivedMessage[];
            try {
              batch = await receiver.receiveMessages(20, { maxWaitTimeInMs: 200 });
            } catch {
              return;
            }
            await Promise.all(
              batch.map(async (m) => {
                if (i++ % 10 === 0) return void held.get(entity)!.add(String(m.body));
                completing.get(entity)!.add(String(m.body));
                try {
                  await receiver.completeMessage(m);
                  completed.get(entity)!.add(String(m.body));
                } catch {
                  // Not acknowledged: it may or may not come back.
                }
              }),
            );
          }
        })(),
      );
    }
    // Events: batches of 5 round robin; an event counts once its batch's send resolved.
    pumps.push(
      (async () => {
        for (let n = 0; !killed; n++) {
          const bodies = Array.from({ length: 5 }, (_, k) => `event-${n}-${k}`);
          try {
            await eh.sendBatch(bodies.map((body) => ({ body })));
            for (const b of bodies) sentEvents.add(b);
          } catch {
            return;
          }
        }
      })(),
    );

    await eventually(
      () => entities.every((e) => sent.get(e)!.size >= 60 && completed.get(e)!.size >= 20 && held.get(e)!.size >= 3) && sentEvents.size >= 60,
      40_000,
    );
    hub.kill('SIGKILL');
    await new Promise((r) => hub!.once('exit', r));
    killed = true;
    // What was acknowledged before the kill (later callbacks are failures: the process is gone).
    const sentAtKill = new Map([...sent].map(([e, s]) => [e, new Set(s)]));
    const completedAtKill = new Map([...completed].map(([e, s]) => [e, new Set(s)]));
    const heldAtKill = new Map([...held].map(([e, s]) => [e, new Set(s)]));
    const eventsAtKill = new Set(sentEvents);
    await Promise.race([Promise.allSettled(pumps), new Promise((r) => setTimeout(r, 10_000))]);
    await Promise.race([Promise.allSettled([sb.close(), eh.close()]), new Promise((r) => setTimeout(r, 5000))]);

    hub = await startHub();
    const sb2 = new ServiceBusClient(sbCs);
    try {
      for (const entity of entities) {
        const receiver = entity === 'work' ? sb2.createReceiver('work') : sb2.createReceiver('news', 'all');
        const after = new Map<string, number>();
        // Drain: held locks (PT2S) expire and their messages come back; stop after 2 s with nothing new.
        let quietSince = Date.now();
        const giveUp = Date.now() + 15_000;
        while (Date.now() - quietSince < 2000 && Date.now() < giveUp) {
          const batch = await receiver.receiveMessages(200, { maxWaitTimeInMs: 500 });
          if (batch.length) quietSince = Date.now();
          for (const m of batch) {
            after.set(String(m.body), (after.get(String(m.body)) ?? 0) + 1);
            await receiver.completeMessage(m);
          }
        }
        await receiver.close();
        const lost = [...sentAtKill.get(entity)!].filter((b) => !after.has(b) && !completing.get(entity)!.has(b));
        assert.equal(lost.length, 0, `${entity}: ${lost.length} of ${sentAtKill.get(entity)!.size} sent messages are gone, e.g. ${lost.slice(0, 5).join(', ')}`);
        const resurrected = [...completedAtKill.get(entity)!].filter((b) => after.has(b));
        assert.equal(resurrected.length, 0, `${entity}: ${resurrected.length} completed messages came back, e.g. ${resurrected.slice(0, 5).join(', ')}`);
        const heldMissing = [...heldAtKill.get(entity)!].filter((b) => !after.has(b));
        assert.equal(heldMissing.length, 0, `${entity}: unsettled messages did not come back: ${heldMissing.slice(0, 5).join(', ')}`);
        const twice = [...after].filter(([, n]) => n > 1);
        assert.equal(twice.length, 0, `${entity}: received more than once after restart: ${twice.slice(0, 5).map(([b]) => b).join(', ')}`);
      }
    } finally {
      await sb2.close();
    }

    // Every event whose send resolved is there; each partition's sequence numbers run 0, 1, 2, … unbroken.
    const consumer = new EventHubConsumerClient('$Default', ehCs, 'stream');
    try {
      const read = new Map<string, { body: string; sequenceNumber: number }[]>();
      const subscription = consumer.subscribe(
        {
          processEvents: async (events, context) => {
            const list = read.get(context.partitionId) ?? [];
            for (const e of events) list.push({ body: String(e.body), sequenceNumber: e.sequenceNumber });
            read.set(context.partitionId, list);
          },
          processError: async () => undefined,
        },
        { startPosition: earliestEventPosition, maxBatchSize: 500, maxWaitTimeInSeconds: 1 },
      );
      const bodies = () => new Set([...read.values()].flat().map((e) => e.body));
      await eventually(() => [...eventsAtKill].every((b) => bodies().has(b)), 20_000).catch(() => undefined);
      await subscription.close();
      const missing = [...eventsAtKill].filter((b) => !bodies().has(b));
      assert.equal(missing.length, 0, `${missing.length} of ${eventsAtKill.size} sent events are missing, e.g. ${missing.slice(0, 5).join(', ')}`);
      for (const [partition, events] of read) {
        events.forEach((e, i) => assert.equal(e.sequenceNumber, i, `partition ${partition}: sequence numbers broken at ${i}`));
      }
    } finally {
      await consumer.close();
    }

    hub.kill('SIGTERM');
    await new Promise((r) => hub!.once('exit', r));
    hub = undefined;
  });
});
