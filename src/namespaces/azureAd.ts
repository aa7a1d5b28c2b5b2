/**
 * Azure AD on the namespaces' data plane: JWTs put on `$cbs` (type `jwt`) and authorized by the
 * role assignments at the entity's ARM scope (Azure Event Hubs / Service Bus Data Sender,
 * Receiver, Owner; inherited from the namespace, resource group and subscription). The identity
 * area implements the token and role checks; the namespaces' adapters only ask.
 */

/** What a link or request needs on an entity, in the words of SAS claims. */
export type DataRight = 'Send' | 'Listen';

/** A JWT that is not one of Fleethub's token service's, or no longer valid (its message says why). */
export class TokenRefused extends Error {
  override name = 'TokenRefused';
}

export interface DataPlaneTokens {
  /**
   * Checks the token (RS256 signature of Fleethub's token service, issuer, lifetime, an audience
   * of this service); its principal must still exist. Throws TokenRefused when it does not hold.
   */
  verify(token: string): Promise<{ principalId: string; expiresAt: number }>;
  /**
   * Undefined when some role assigned to `principalId` at `scope` or above grants `dataAction`;
   * otherwise why not, naming the principal, the data action and the roles that would grant it.
   */
  refusal(principalId: string, scope: string, dataAction: string): Promise<string | undefined>;
}

/** Azure AD for one family of namespaces: its tokens and each namespace's ARM resource id. */
export interface NamespaceAzureAd {
  tokens: DataPlaneTokens;
  /** `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.EventHub|ServiceBus/namespaces/{name}` */
  resourceIdOf(namespace: string): string;
}

/** The data actions Azure's Event Hubs data roles grant. */
export const EVENT_HUBS_DATA_ACTIONS: Record<DataRight, string> = {
  Send: 'Microsoft.EventHub/namespaces/messages/send/action',
  Listen: 'Microsoft.EventHub/namespaces/messages/receive/action',
};

/** The data actions Azure's Service Bus data roles grant. */
export const SERVICE_BUS_DATA_ACTIONS: Record<DataRight, string> = {
  Send: 'Microsoft.ServiceBus/namespaces/messages/send/action',
  Listen: 'Microsoft.ServiceBus/namespaces/messages/receive/action',
};

/** The audiences Azure AD tokens for Event Hubs carry (Event Hubs namespaces also take Service Bus's). */
export const EVENT_HUBS_AUDIENCES = ['https://eventhubs.azure.net', 'https://eventhubs.azure.net/.default', 'https://servicebus.azure.net', 'https://servicebus.azure.net/.default'];
export const SERVICE_BUS_AUDIENCES = ['https://servicebus.azure.net', 'https://servicebus.azure.net/.default'];

/** The message of a refused link or request, as Event Hubs and Service Bus begin it. */
export function claimRequired(right: DataRight, why: string): string {
  return `Unauthorized access. '${right}' claim(s) are required to perform this operation. ${why}`;
}
