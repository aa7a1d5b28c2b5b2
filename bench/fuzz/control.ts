/**
 * The control devices: real Azure IoT device SDK clients (one over MQTT, one over AMQP, each its
 * own device) sending telemetry a few times a second for the whole run. Every send must succeed:
 * fuzzing other connections must never disturb a well-behaved device.
 */
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import deviceAmqp from 'azure-iot-device-amqp';

export interface ControlFailure {
  at: number;
  transport: string;
  error: string;
}

export interface ControlDevices {
  sent: number;
  failures: ControlFailure[];
  /** Stops sending and closes the clients. */
  stop(): Promise<void>;
}

const SEND_TIMEOUT_MS = 10_000;

export async function startControlDevices(
  connectionStrings: { mqtt: string; amqp: string },
  intervalMs = 250,
): Promise<ControlDevices> {
  const clients = [
    { transport: 'mqtt', client: device.Client.fromConnectionString(connectionStrings.mqtt, deviceMqtt.Mqtt) },
    { transport: 'amqp', client: device.Client.fromConnectionString(connectionStrings.amqp, deviceAmqp.Amqp) },
  ];
  const state: ControlDevices = { sent: 0, failures: [], stop: async () => undefined };
  for (const { client } of clients) await client.open();
  let stopped = false;
  const loops = clients.map(async ({ transport, client }) => {
    let n = 0;
    while (!stopped) {
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          client.sendEvent(new device.Message(JSON.stringify({ n: n++, at: started }))),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no acknowledgement within ${SEND_TIMEOUT_MS} ms`)), SEND_TIMEOUT_MS);
          }),
        ]);
        state.sent++;
      } catch (e) {
        state.failures.push({ at: Date.now(), transport, error: (e as Error).message });
      } finally {
        clearTimeout(timer);
      }
      await new Promise((r) => setTimeout(r, Math.max(0, intervalMs - (Date.now() - started))));
    }
  });
  state.stop = async () => {
    stopped = true;
    await Promise.all(loops);
    await Promise.all(clients.map(({ client }) => client.close().catch(() => undefined)));
  };
  return state;
}
