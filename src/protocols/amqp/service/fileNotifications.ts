import { randomUUID } from 'node:crypto';
import rhea, { type Sender } from 'rhea';
import type { IncomingLink, LinkRoute } from '../link.js';
import { authorizeLink } from '../linkAuth.js';
import { IotHubDataActions } from '../../../hub/auth/dataActions.js';
import type { FileUploads } from '../../../hub/files/fileUploads.js';
import { serviceBoundRoute } from './serviceBound.js';

/**
 * The service's file-upload notification receiver (`/messages/serviceBound/filenotifications`):
 * one notification per message, `{deviceId, blobUri, blobName, lastUpdatedTime, blobSizeInBytes,
 * enqueuedTimeUtc}`, locked for `fileNotifications.lockDurationAsIso8601`; completed ones are
 * removed, rejected ones dead-lettered (dropped), abandoned or unsettled ones offered again until
 * their maximum delivery count or time to live.
 */
export function fileNotificationRoute(fileUploads?: FileUploads, hubName = ''): LinkRoute {
  if (!fileUploads) {
    return {
      role: 'send',
      address: /^\/messages\/serviceBound\/filenotifications$/i,
      async open(incoming: IncomingLink<Sender>) {
        incoming.link.set_source(incoming.link.source);
        await authorizeLink(incoming, 'ServiceConnect', '', [IotHubDataActions.fileUploadNotifications]);
      },
    };
  }
  return serviceBoundRoute({
    address: /^\/messages\/serviceBound\/filenotifications$/i,
    dataAction: IotHubDataActions.fileUploadNotifications,
    queue: fileUploads.notifications,
    lockMs: () => fileUploads.lockMs(),
    rejectRemoves: true,
    encode: ([n]) => {
      const { id: _id, ...notification } = n!;
      return {
        message_id: randomUUID(),
        user_id: Buffer.from(hubName, 'utf8') as never,
        content_type: 'application/json',
        content_encoding: 'utf-8',
        body: rhea.message.data_section(Buffer.from(JSON.stringify(notification), 'utf8')),
      };
    },
  });
}
