import type { EventHubEntity } from '../../../hub/eventhub/entity.js';
import type { ClientConnection } from '../link.js';

/** Told when the token that authorized a link expires, so that the link ends. */
export interface ExpiryHolder {
  expire(why: string): void;
}

/**
 * How a family of Event Hubs links finds its entities and authorizes: the built-in endpoint
 * (one entity, IoT Hub's policies) or local Event Hubs namespaces (the connection's namespace,
 * its SAS rules).
 */
export interface EventHubAccess {
  /** When set, the family takes links only on the connections it accepts. */
  accepts?(connection: ClientConnection): boolean;
  /** The event hub `name` as this connection sees it; undefined when there is none. */
  find(connection: ClientConnection, name: string): EventHubEntity | undefined;
  /**
   * Resolves when the connection's tokens allow `right` on `entityName` (the address's first
   * segment; `path` the whole address); throws HubError (401) otherwise.
   */
  authorize(connection: ClientConnection, right: 'Send' | 'Listen', entityName: string, path: string, holder?: ExpiryHolder): Promise<void>;
  /** Ends what `authorize` set up for `holder`. */
  release(connection: ClientConnection, holder: ExpiryHolder): void;
  /** A token sent with a $management request (`security_token`), put as if on $cbs; errors ignored. */
  putRequestToken(connection: ClientConnection, token: string): Promise<void>;
}

/** The built-in endpoint's access: its one entity, authorized by IoT Hub's ServiceConnect policies. */
export function builtInAccess(endpoint: EventHubEntity): EventHubAccess {
  return {
    find: (_connection, name) => (name.toLowerCase() === endpoint.name.toLowerCase() ? endpoint : undefined),
    authorize: async (connection, _right, _entity, path, holder) => {
      // $management requests are authorized for the endpoint whatever entity they name (an unknown one is then 404).
      await connection.claims.authorize('ServiceConnect', path.endsWith('/$management') ? `/${endpoint.name}/$management` : path, holder);
    },
    release: (connection, holder) => connection.claims.release(holder),
    putRequestToken: async (connection, token) => {
      await connection.claims.put(undefined, token).catch(() => undefined);
    },
  };
}
