/**
 * The back-end side of Azure's "device management: reboot" scenario, with only azure-iothub.
 * It invokes the `reboot` direct method on a device, then reads the device twin until the device
 * reports `iothubDM.reboot.lastReboot` from after the request.
 *
 *   IOTHUB_CONNECTION_STRING='HostName=…;SharedAccessKeyName=service;SharedAccessKey=…' \
 *   DEVICE_ID=myDeviceId node dist/examples/device-management-reboot/backend.js
 */
import iothub from 'azure-iothub';

const connectionString = process.env.IOTHUB_CONNECTION_STRING;
const deviceId = process.env.DEVICE_ID;
if (!connectionString || !deviceId) {
  console.error('Set IOTHUB_CONNECTION_STRING and DEVICE_ID');
  process.exit(2);
}
const timeoutMs = Number(process.env.TIMEOUT_SECONDS ?? 60) * 1000;

const client = iothub.Client.fromConnectionString(connectionString);
const registry = iothub.Registry.fromConnectionString(connectionString);

const requestedAt = new Date();
const { result } = await client.invokeDeviceMethod(deviceId, {
  methodName: 'reboot',
  payload: { reason: 'device management example' },
  responseTimeoutInSeconds: 30,
});
console.log(`reboot method returned status ${result.status}: ${JSON.stringify(result.payload)}`);

const deadline = Date.now() + timeoutMs;
for (;;) {
  const { responseBody: twin } = await registry.getTwin(deviceId);
  const lastReboot = (twin.properties.reported as any)?.iothubDM?.reboot?.lastReboot as string | undefined;
  if (lastReboot && Date.parse(lastReboot) >= requestedAt.getTime() - 1000) {
    console.log(`Device rebooted; lastReboot = ${lastReboot}`);
    break;
  }
  console.log('Waiting for the device to report the reboot...');
  if (Date.now() > deadline) {
    console.error('The device did not report a reboot in time');
    process.exitCode = 1;
    break;
  }
  await new Promise((r) => setTimeout(r, 500));
}
await client.close();
