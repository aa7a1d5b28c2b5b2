/**
 * Real sessions to mutate: the bytes an Azure IoT device SDK client writes (after TLS) while it
 * connects, sends telemetry with properties, reads and patches its twin, subscribes to methods
 * and cloud-to-device messages, and closes. Captured in this process by wrapping the TLS socket's writes
 * for the duration of the recording.
 */
import tls, { TLSSocket } from 'node:tls';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import deviceAmqp from 'azure-iot-device-amqp';

/** The writes of one session to `port`, in order. */
export async function captureSession(transport: 'mqtt' | 'amqp', connectionString: string): Promise<Buffer[]> {
  const port = transport === 'mqtt' ? 8883 : 5671;
  const chunks: Buffer[] = [];
  // The SDKs write before the handshake is done (remotePort unknown yet): mark their sockets at tls.connect.
  const recorded = new WeakSet<TLSSocket>();
  const connect = tls.connect;
  tls.connect = function (...args: unknown[]) {
    const socket = (connect as (...a: unknown[]) => TLSSocket)(...args);
    const options = (typeof args[0] === 'object' ? args[0] : args[1]) as { port?: number } | undefined;
    if (Number(options?.port ?? args[0]) === port) recorded.add(socket);
    return socket;
  } as typeof connect;
  // Below Writable's buffering (the SDKs cork their sockets), every byte goes through _write or _writev.
  type Proto = { _write: (...a: any[]) => unknown; _writev: (...a: any[]) => unknown };
  const proto = TLSSocket.prototype as unknown as Proto;
  const { _write, _writev } = proto;
  proto._write = function (this: TLSSocket, chunk: Buffer, ...rest: unknown[]) {
    if (recorded.has(this)) chunks.push(Buffer.from(chunk));
    return _write.call(this, chunk, ...rest);
  };
  proto._writev = function (this: TLSSocket, data: { chunk: Buffer }[], ...rest: unknown[]) {
    if (recorded.has(this)) for (const d of data) chunks.push(Buffer.from(d.chunk));
    return _writev.call(this, data, ...rest);
  };
  try {
    const client = device.Client.fromConnectionString(connectionString, transport === 'mqtt' ? deviceMqtt.Mqtt : deviceAmqp.Amqp);
    await client.open();
    const message = new device.Message(JSON.stringify({ temperature: 21.5 }));
    message.properties.add('alert', 'hot & humid');
    message.properties.add('unicode', 'température');
    message.messageId = 'captured-1';
    message.correlationId = 'corr-1';
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    await client.sendEvent(message);
    const twin = await client.getTwin();
    await new Promise<void>((resolve, reject) => twin.properties.reported.update({ firmware: '1.2.3', nested: { a: [1, 2] } }, (e?: Error) => (e ? reject(e) : resolve())));
    client.onDeviceMethod('reboot', (_req, res) => res.send(200, {}));
    client.on('message', (m) => void client.complete(m));
    await new Promise((r) => setTimeout(r, 300));
    await client.sendEvent(new device.Message(Buffer.from([0, 1, 2, 255])));
    await client.close();
  } finally {
    proto._write = _write;
    proto._writev = _writev;
    tls.connect = connect;
  }
  return chunks;
}
