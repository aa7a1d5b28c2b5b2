/** Raw MQTT over TLS, for what the Azure SDK never sends: foreign topics, garbage, oversize packets. */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import mqttPacket, { type Packet } from 'mqtt-packet';
import mqtt, { type MqttClient } from 'mqtt';
import { createSasToken } from '../../src/core/sas.js';

export function deviceToken(host: string, deviceId: string, key: string, moduleId?: string): string {
  const resource = `${host}/devices/${deviceId}` + (moduleId ? `/modules/${moduleId}` : '');
  return createSasToken(resource, key, Math.floor(Date.now() / 1000) + 3600);
}

/** An mqtt.js client connected as the device, as the Azure SDK would (same user name shape). */
export async function mqttDevice(host: string, deviceId: string, key: string, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(`mqtts://${host}:8883`, {
    clientId: deviceId,
    username: `${host}/${deviceId}/?api-version=2021-04-12`,
    password: deviceToken(host, deviceId, key),
    protocolVersion: 4,
    reconnectPeriod: 0,
    clean: true,
    ...options,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
  return client;
}

/** Resolves when the hub closes the client's connection; rejects if it is still open after `ms`. */
export function closed(client: MqttClient, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!client.connected) return resolve();
    const timer = setTimeout(() => reject(new Error(`connection still open after ${ms} ms`)), ms);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A raw TLS socket that decodes the packets the hub sends. */
export class RawConnection {
  readonly packets: Packet[] = [];
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 });
  readonly closed: Promise<void>;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: TLSSocket) {
    this.parser.on('packet', (p: Packet) => {
      this.packets.push(p);
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('data', (b: Buffer) => this.parser.parse(b));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static open(host: string, port = 8883): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host, port }, () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  send(packet: Packet): void {
    this.socket.write(mqttPacket.generate(packet));
  }

  async next(cmd: string, ms = 5000): Promise<Packet> {
    const until = Date.now() + ms;
    for (;;) {
      const i = this.packets.findIndex((p) => p.cmd === cmd);
      if (i >= 0) return this.packets.splice(i, 1)[0]!;
      if (Date.now() > until) throw new Error(`no ${cmd} in time`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), new Promise((r) => setTimeout(r, 50))]);
    }
  }

  async connect(host: string, clientId: string, password: string | undefined, extra: Partial<mqttPacket.IConnectPacket> = {}): Promise<number> {
    this.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId,
      keepalive: 60,
      username: `${host}/${clientId}/?api-version=2021-04-12`,
      ...(password === undefined ? {} : { password: Buffer.from(password) }),
      ...extra,
    });
    const connack = (await this.next('connack')) as mqttPacket.IConnackPacket;
    return connack.returnCode!;
  }
}

/** Resolves with how long the hub took to close the connection, or rejects after `ms`. */
export async function closesWithin(c: RawConnection, ms: number): Promise<number> {
  const start = Date.now();
  await Promise.race([c.closed, new Promise((_, reject) => setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms))]);
  return Date.now() - start;
}
