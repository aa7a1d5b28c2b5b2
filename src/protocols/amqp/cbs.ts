import { HubError } from '../../core/errors.js';
import { requestResponseNode, type Reply } from './requestResponse.js';
import type { ClientConnection, LinkRoute } from './link.js';

/**
 * Another owner of tokens put on `$cbs` on this endpoint (a Service Bus namespace's SAS): tried
 * before the hub's own authorizer, it answers whether the token was its (and records it), or
 * throws HubError 401 when it is its and invalid.
 */
export interface CbsTokenFamily {
  put(connection: ClientConnection, audience: string, token: string): Promise<boolean>;
}

// `jwt`: an Azure AD token (Event Hubs clients); azure-iothub sends `Bearer <jwt>` as a sastoken.
const tokenTypes = new Set(['servicebus.windows.net:sastoken', 'azure-devices.net:sastoken', 'jwt']);

/**
 * Claims-based security: `put-token` on the `$cbs` node records a SAS token for an audience on
 * the connection (ConnectionClaims); links attached later are authorized against it. Answers
 * carry `status-code` 200, 400 or 401 as IoT Hub and Event Hubs do.
 */
export const cbsRoutes: LinkRoute[] = cbsNode([]);

/** The `$cbs` node, offering each token to `families` first. */
export function cbsNode(families: CbsTokenFamily[]): LinkRoute[] {
  return requestResponseNode(/^\$cbs$/i, async (connection, request): Promise<Reply> => {
    const props = (request.application_properties ?? {}) as Record<string, unknown>;
    if (props.operation !== 'put-token') {
      return { statusCode: 400, statusDescription: `Unsupported operation '${String(props.operation)}' on $cbs` };
    }
    if (typeof props.type !== 'string' || !tokenTypes.has(props.type)) {
      return { statusCode: 400, statusDescription: `Unsupported token type '${String(props.type)}'` };
    }
    const audience = props.name;
    const token = typeof request.body === 'string' ? request.body : Buffer.isBuffer(request.body) ? request.body.toString('utf8') : undefined;
    if (typeof audience !== 'string' || !audience || !token) {
      return { statusCode: 400, statusDescription: "put-token needs the audience in 'name' and the token as the body" };
    }
    try {
      for (const family of families) if (await family.put(connection, audience, token)) return { statusCode: 200, statusDescription: 'OK' };
      await connection.claims.put(audience, token);
      return { statusCode: 200, statusDescription: 'OK' };
    } catch (e) {
      if (e instanceof HubError && e.status === 401) {
        // Counted against the peer's address (once per connection), as a CONNECT refused for its credentials is.
        connection.refusedCredentials();
        return { statusCode: 401, statusDescription: e.message };
      }
      throw e;
    }
  });
}
