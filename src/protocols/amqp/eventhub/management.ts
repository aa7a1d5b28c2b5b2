import rhea from 'rhea';
import { HubError } from '../../../core/errors.js';
import type { EventHubAccess } from './access.js';
import { requestResponseNode, type Reply } from '../requestResponse.js';
import type { LinkRoute } from '../link.js';

const { types } = rhea;

/**
 * The Event Hub's `$management` node, READ operations as @azure/event-hubs sends them:
 * `com.microsoft:eventhub` (name, created_at, partition_count, partition_ids) and
 * `com.microsoft:partition` (begin/last sequence numbers, last offset and time, emptiness).
 * Authorized by the request's `security_token` or a token put on $cbs for the node.
 */
export function managementRoutes(access: EventHubAccess): LinkRoute[] {
  const routes = requestResponseNode(/^\/?(?:([^/]+)\/)?\$management$/i, async (connection, request): Promise<Reply> => {
    const props = (request.application_properties ?? {}) as Record<string, unknown>;
    const name = typeof props.name === 'string' ? props.name : '';
    try {
      if (typeof props.security_token === 'string') await access.putRequestToken(connection, props.security_token);
      // Reads are what a producer does before sending too: Send or Listen will do.
      await access.authorize(connection, 'Listen', name, `/${name}/$management`).catch(async (e) => {
        await access.authorize(connection, 'Send', name, `/${name}/$management`).catch(() => Promise.reject(e));
      });
    } catch (e) {
      if (e instanceof HubError) return { statusCode: 401, statusDescription: e.message };
      throw e;
    }
    if (props.operation !== 'READ') return { statusCode: 400, statusDescription: `Unsupported operation '${String(props.operation)}'` };
    const endpoint = access.find(connection, name);
    if (!endpoint) {
      return { statusCode: 404, statusDescription: `The messaging entity '${String(props.name)}' could not be found.` };
    }
    if (props.type === 'com.microsoft:eventhub') {
      const p = endpoint.properties();
      return {
        statusCode: 200,
        statusDescription: 'OK',
        body: {
          name: p.name,
          type: 'com.microsoft:eventhub',
          created_at: types.wrap_timestamp(p.createdAt.getTime()),
          partition_count: types.wrap_int(p.partitionIds.length),
          partition_ids: p.partitionIds,
        },
      };
    }
    if (props.type === 'com.microsoft:partition') {
      const partition = endpoint.partition(String(props.partition));
      if (partition === undefined) {
        return { statusCode: 404, statusDescription: `The messaging entity '${endpoint.name}/Partitions/${String(props.partition)}' could not be found.` };
      }
      const info = await endpoint.partitionProperties(partition);
      return {
        statusCode: 200,
        statusDescription: 'OK',
        body: {
          name: endpoint.name,
          type: 'com.microsoft:partition',
          partition: String(partition),
          begin_sequence_number: types.wrap_long(info.beginSequenceNumber),
          last_enqueued_sequence_number: types.wrap_long(info.lastSequenceNumber),
          last_enqueued_offset: info.lastOffset,
          last_enqueued_time_utc: types.wrap_timestamp(info.lastEnqueuedTime),
          is_partition_empty: info.isEmpty,
        },
      };
    }
    return { statusCode: 400, statusDescription: `Unsupported type '${String(props.type)}'` };
  });
  return access.accepts ? routes.map((r) => ({ ...r, accepts: access.accepts })) : routes;
}
