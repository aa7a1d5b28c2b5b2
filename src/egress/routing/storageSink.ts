/** Routing to a storage container through the unmodified @azure/storage-blob (AzureBlobStorage's clients and TLS trust). */
import { Readable } from 'node:stream';
import type { ContainerClient } from '@azure/storage-blob';
import type { EndpointSettings, EndpointSink, RoutedMessage, SinkContext } from '../../hub/routing/types.js';
import { SinkError } from '../../hub/routing/types.js';
import type { AzureBlobStorage } from '../blobStorage.js';
import { blobName, collisionName, DEFAULT_FILE_NAME_FORMAT, fileNameFormatError, storageEncoding, type StorageEncoding } from '../../hub/routing/storageEndpoint.js';
import { sinkError } from './errors.js';
import { encodeRecords } from './storageRecords.js';

const DEFAULT_BATCH_FREQUENCY_SECONDS = 300;
const DEFAULT_MAX_CHUNK_BYTES = 300 * 1024 * 1024;
/** Names tried per blob when earlier batches of the same minute took them. */
const MAX_COLLISIONS = 1000;

/** A storage connection string for an identityBased endpoint's `endpointUri` (the account named from it). */
function identityConnectionString(endpointUri: string): string {
  const url = new URL(endpointUri);
  const pathAccount = url.pathname.split('/').filter(Boolean)[0];
  // https://{account}.blob.core.windows.net/, or path style (Azurite): https://host:port/{account}
  const account = /\.blob\./i.test(url.hostname) ? url.hostname.split('.')[0]! : (pathAccount ?? url.hostname.split('.')[0]!);
  return `BlobEndpoint=${endpointUri.replace(/\/+$/, '')};AccountName=${account}`;
}

export class StorageSink implements EndpointSink {
  readonly batching: { frequencyMs: number; maxBytes: number };
  private readonly format: string;
  private readonly encoding: StorageEncoding;
  private readonly what: string;
  private container?: ContainerClient;

  constructor(
    private readonly endpoint: EndpointSettings,
    private readonly context: SinkContext,
    private readonly storage: AzureBlobStorage,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.what = `Writing to container '${endpoint.containerName ?? ''}' of endpoint '${endpoint.name}'`;
    const seconds = Math.max(endpoint.batchFrequencyInSeconds ?? DEFAULT_BATCH_FREQUENCY_SECONDS, context.minBatchFrequencySeconds);
    this.batching = { frequencyMs: seconds * 1000, maxBytes: endpoint.maxChunkSizeInBytes ?? DEFAULT_MAX_CHUNK_BYTES };
    this.format = endpoint.fileNameFormat || DEFAULT_FILE_NAME_FORMAT;
    this.encoding = storageEncoding(endpoint.encoding) ?? 'avro';
  }

  private client(): ContainerClient {
    if (this.container) return this.container;
    const formatError = fileNameFormatError(this.format);
    if (formatError) throw new SinkError('invalid', `${this.what} failed: ${formatError}`);
    if (!storageEncoding(this.endpoint.encoding)) throw new SinkError('invalid', `${this.what} failed: unknown encoding '${this.endpoint.encoding}' (avro, avroDeflate or json)`);
    if (!this.endpoint.containerName) throw new SinkError('invalid', `${this.what} failed: the endpoint names no container`);
    const c = this.context.credential;
    let connectionString: string;
    if (c.kind === 'key') connectionString = c.connectionString || this.endpoint.connectionString || '';
    else if (this.endpoint.endpointUri) connectionString = identityConnectionString(this.endpoint.endpointUri);
    else throw new SinkError('invalid', `${this.what} failed: identityBased needs an endpointUri (https://{account}.blob.core.windows.net/)`);
    const { client } = this.storage.serviceClient({ connectionString, credential: c });
    this.container = client.getContainerClient(this.endpoint.containerName);
    return this.container;
  }

  /** One blob per hub partition, named by the file name format at the time of writing. */
  async deliver(messages: RoutedMessage[]): Promise<void> {
    if (messages.length === 0) return;
    try {
      const container = this.client();
      const byPartition = new Map<number, RoutedMessage[]>();
      for (const m of messages) {
        const list = byPartition.get(m.partition) ?? [];
        list.push(m);
        byPartition.set(m.partition, list);
      }
      const time = this.now();
      for (const [partition, list] of [...byPartition].sort((a, b) => a[0] - b[0])) {
        const { chunks, contentType } = await encodeRecords(list, this.encoding);
        await this.writeNew(container, blobName(this.format, this.context.hubName, partition, time), chunks, contentType);
      }
    } catch (e) {
      throw sinkError(e, this.what);
    }
  }

  /** Creates the blob; never overwrites: a name already taken gets a suffix (`_1`, `_2`, …). */
  private async writeNew(container: ContainerClient, name: string, chunks: Buffer[], contentType: string): Promise<string> {
    const length = chunks.reduce((n, c) => n + c.length, 0);
    // A stream of the pieces for each attempt (the SDK calls it again on a retry).
    const body = () => Readable.from(chunks, { objectMode: false });
    for (let attempt = 0; attempt <= MAX_COLLISIONS; attempt++) {
      const candidate = attempt === 0 ? name : collisionName(name, attempt);
      try {
        await container.getBlockBlobClient(candidate).upload(body, length, { conditions: { ifNoneMatch: '*' }, blobHTTPHeaders: { blobContentType: contentType } });
        return candidate;
      } catch (e) {
        const err = e as { statusCode?: number; details?: { errorCode?: string } };
        if (err.statusCode === 409 && (err.details?.errorCode ?? 'BlobAlreadyExists') === 'BlobAlreadyExists') continue;
        throw e;
      }
    }
    throw new SinkError('invalid', `${this.what} failed: ${MAX_COLLISIONS} blobs named '${name}…' exist already`);
  }

  async close(): Promise<void> {
    this.container = undefined;
  }
}
