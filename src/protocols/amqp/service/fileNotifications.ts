import type { Sender } from 'rhea';
import type { IncomingLink, LinkRoute } from '../link.js';
import { authorizeLink } from '../linkAuth.js';
import { IotHubDataActions } from '../../../hub/auth/dataActions.js';

/**
 * The service's file-upload notification receiver (`/messages/serviceBound/filenotifications`).
 * The link attaches as on IoT Hub; notifications come once file upload exists (no source yet),
 * so it stays quiet rather than refusing the SDK's getFileNotificationReceiver.
 */
export function fileNotificationRoute(): LinkRoute {
  return {
    role: 'send',
    address: /^\/messages\/serviceBound\/filenotifications$/i,
    async open(incoming: IncomingLink<Sender>) {
      incoming.link.set_source(incoming.link.source);
      await authorizeLink(incoming, 'ServiceConnect', '', [IotHubDataActions.fileUploadNotifications]);
    },
  };
}
