/**
 * MQTT sessions with CleanSession 0: IoT Hub keeps a device's subscriptions (topic filter and
 * granted QoS) when it disconnects and restores them when it connects again with CleanSession 0.
 * The Azure device SDKs rely on it: after a reconnect (a renewed SAS token, a dropped network) they
 * do not subscribe again to methods, desired properties or cloud-to-device messages. A connection
 * with CleanSession 1 discards what was kept. Kept in memory: a hub restart forgets them.
 */
export class PersistentSessions {
  private readonly subscriptions = new Map<string, Map<string, 0 | 1>>();

  /** The subscriptions kept for an identity, in the order they were made. */
  get(identity: string): [filter: string, qos: 0 | 1][] {
    return [...(this.subscriptions.get(identity) ?? [])];
  }

  subscribed(identity: string, filter: string, qos: 0 | 1): void {
    const subs = this.subscriptions.get(identity) ?? new Map<string, 0 | 1>();
    subs.set(filter, qos);
    this.subscriptions.set(identity, subs);
  }

  unsubscribed(identity: string, filter: string): void {
    const subs = this.subscriptions.get(identity);
    subs?.delete(filter);
    if (subs?.size === 0) this.subscriptions.delete(identity);
  }

  /** CleanSession 1, or the identity was deleted. */
  discard(identity: string): void {
    this.subscriptions.delete(identity);
  }
}
