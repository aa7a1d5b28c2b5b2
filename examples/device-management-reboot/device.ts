/**
 * The device side of Azure's "device management: reboot" scenario, with only Azure SDK packages.
 * It listens for the `reboot` direct method, acknowledges it, reports
 * `iothubDM.reboot.lastReboot` as a reported property and "reboots".
 *
 *   DEVICE_CONNECTION_STRING='HostName=…;DeviceId=…;SharedAccessKey=…' node dist/examples/device-management-reboot/device.js
 */
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';

const connectionString = process.env.DEVICE_CONNECTION_STRING;
if (!connectionString) {
  console.error('Set DEVICE_CONNECTION_STRING to the device connection string');
  process.exit(2);
}

const client = device.Client.fromConnectionString(connectionString, deviceMqtt.Mqtt);

client.onDeviceMethod('reboot', (request, response) => {
  response.send(200, 'Reboot started', (err?: Error) => {
    if (err) console.error(`Could not acknowledge the reboot: ${err.message}`);
    else console.log('Acknowledged reboot request');
  });
  // Report the reboot before the (simulated) restart, as the Azure sample does.
  const patch = { iothubDM: { reboot: { lastReboot: new Date().toISOString() } } };
  client.getTwin((err, twin) => {
    if (err || !twin) return console.error(`Could not get the twin: ${err?.message}`);
    twin.properties.reported.update(patch, (updateErr?: Error) => {
      if (updateErr) console.error(`Could not report the reboot: ${updateErr.message}`);
      else console.log(`Reported lastReboot ${patch.iothubDM.reboot.lastReboot}`);
    });
  });
  console.log(`Rebooting! (payload: ${JSON.stringify(request.payload)})`);
});

await client.open();
console.log('Device connected; waiting for the reboot direct method');

process.on('SIGTERM', () => {
  void client.close().finally(() => process.exit(0));
});
