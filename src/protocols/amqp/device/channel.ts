import type { Receiver, Sender } from 'rhea';
import type { ClientConnection } from '../link.js';

/**
 * IoT Hub's request/response "channels" on device links (twin, methods): the device attaches a
 * sender and a receiver on the same address with the same `com.microsoft:channel-correlation-id`;
 * responses and notifications go back on the receiver of that channel.
 */
export class Channels<T> {
  private readonly byConnection = new WeakMap<ClientConnection, Map<string, T>>();

  key(link: Sender | Receiver, address: string): string {
    const id = link.properties?.['com.microsoft:channel-correlation-id'];
    return `${address.toLowerCase()}|${id === undefined ? '' : String(id)}`;
  }

  get(connection: ClientConnection, key: string, create: () => T): T {
    let map = this.byConnection.get(connection);
    if (!map) this.byConnection.set(connection, (map = new Map()));
    let channel = map.get(key);
    if (!channel) map.set(key, (channel = create()));
    return channel;
  }

  delete(connection: ClientConnection, key: string): void {
    this.byConnection.get(connection)?.delete(key);
  }
}
