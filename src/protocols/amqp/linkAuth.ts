import type { Receiver, Sender } from 'rhea';
import { HubError } from '../../core/errors.js';
import type { Principal } from '../../hub/auth/authorizer.js';
import type { Permission } from '../../hub/auth/types.js';
import { amqpError, amqpErrors } from './errors.js';
import type { IncomingLink } from './link.js';

/**
 * Authorizes a link against the connection's tokens; on failure closes it with
 * amqp:unauthorized-access and returns undefined. The link is closed when the token that
 * authorized it expires without renewal.
 */
export async function authorizeLink(
  { connection, link }: IncomingLink<Sender | Receiver>,
  permission: Permission,
  resourcePath: string,
  /** What an Azure AD token needs for this link (IoT Hub data actions). */
  dataActions?: readonly string[],
): Promise<Principal | undefined> {
  const holder = { expire: (why: string) => link.close(amqpErrors.unauthorized(why)) };
  try {
    const principal = await connection.claims.authorize(permission, resourcePath, holder, dataActions);
    const release = () => connection.claims.release(holder);
    link.on(link.is_sender() ? 'sender_close' : 'receiver_close', release);
    return link.is_open() ? principal : undefined;
  } catch (e) {
    link.close(e instanceof HubError ? amqpError(e) : amqpErrors.unauthorized('Unauthorized'));
    return undefined;
  }
}
