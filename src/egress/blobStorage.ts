import { createDefaultHttpClient, type HttpClient, type PipelineRequest } from '@azure/core-rest-pipeline';
import {
  AnonymousCredential,
  BlobSASPermissions,
  ContainerClient,
  BlobServiceClient,
  generateBlobSASQueryParameters,
  SASProtocol,
  StorageSharedKeyCredential,
  newPipeline,
  type Pipeline,
} from '@azure/storage-blob';
import type { TokenCredential } from '@azure/core-auth';
import type { FileStorage, StorageTarget } from '../hub/files/fileUploads.js';
import type { BulkBlobs, ContainerRef } from '../hub/importExport/bulkJobs.js';
import { Readable } from 'node:stream';
import { egressTrustedCas } from './tls.js';

const UDK_SAS_VERSION = '2025-07-05';

/** A storage connection string's parts. */
export interface StorageAccount {
  accountName: string;
  accountKey?: string;
  /** The blob endpoint, without a trailing slash (`https://acct.blob.core.windows.net`, or Azurite's `https://host:port/acct`). */
  blobEndpoint: string;
}

export function parseStorageConnectionString(connectionString: string): StorageAccount {
  const parts = new Map<string, string>();
  for (const part of connectionString.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) parts.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim());
  }
  const accountName = parts.get('accountname');
  if (!accountName) throw new Error('The storage connection string names no AccountName');
  const protocol = parts.get('defaultendpointsprotocol') ?? 'https';
  const blobEndpoint = (parts.get('blobendpoint') ?? `${protocol}://${accountName}.blob.${parts.get('endpointsuffix') ?? 'core.windows.net'}`).replace(/\/+$/, '');
  const accountKey = parts.get('accountkey');
  return { accountName, ...(accountKey ? { accountKey } : {}), blobEndpoint };
}

/** An HTTP client that trusts the system's CAs and Fleethub's own (the embedded storage's certificate is from it). */
function trustingHttpClient(caPem: string): HttpClient {
  const base = createDefaultHttpClient();
  // One settings object, so that the pipeline reuses one agent for it.
  const tlsSettings = { ca: egressTrustedCas(caPem) };
  return {
    sendRequest: (request: PipelineRequest) => {
      if (!request.tlsSettings) request.tlsSettings = tlsSettings;
      return base.sendRequest(request);
    },
  };
}

/**
 * Blob storage through @azure/storage-blob, as the hub: with the account key, or as the hub's
 * identity (tokens from the egress seam), over TLS that trusts Fleethub's CA too.
 */
export class AzureBlobStorage implements FileStorage, BulkBlobs {
  private readonly httpClient: HttpClient;
  /** User delegation keys, per identity and endpoint, reused while they have an hour left. */
  private readonly delegationKeys = new Map<string, { key: Awaited<ReturnType<BlobServiceClient['getUserDelegationKey']>>; expiresOn: number }>();

  constructor(caPem: string) {
    this.httpClient = trustingHttpClient(caPem);
  }

  /**
   * A pipeline whose HTTP client trusts Fleethub's CA. StoragePipelineOptions takes only a v1
   * (core-http) client; the core-rest-pipeline client the pipeline would create is set instead.
   */
  private pipeline(credential: StorageSharedKeyCredential | TokenCredential | AnonymousCredential): Pipeline {
    const pipeline = newPipeline(credential, { retryOptions: { maxTries: 2 } });
    (pipeline as unknown as { _coreHttpClient?: HttpClient })._coreHttpClient = this.httpClient;
    return pipeline;
  }

  serviceClient(target: Pick<StorageTarget, 'connectionString' | 'credential'>): { client: BlobServiceClient; account: StorageAccount } {
    const account = parseStorageConnectionString(target.connectionString);
    if (target.credential.kind === 'key') {
      if (!account.accountKey) throw new Error('A keyBased storage connection string needs an AccountKey');
      return { client: new BlobServiceClient(account.blobEndpoint, this.pipeline(new StorageSharedKeyCredential(account.accountName, account.accountKey))), account };
    }
    return { client: new BlobServiceClient(account.blobEndpoint, this.pipeline(target.credential.credential as TokenCredential)), account };
  }

  async uploadSas(target: StorageTarget, blobName: string, expiresOn: Date): Promise<{ hostName: string; sasToken: string; blobUri: string }> {
    const { client, account } = this.serviceClient(target);
    const values = { containerName: target.containerName, blobName, permissions: BlobSASPermissions.parse('rcw'), expiresOn, protocol: SASProtocol.Https };
    let sas: string;
    if (target.credential.kind === 'key') {
      sas = generateBlobSASQueryParameters(values, new StorageSharedKeyCredential(account.accountName, account.accountKey!)).toString();
    } else {
      const key = await this.delegationKey(client, `${target.credential.principalId ?? ''}|${account.blobEndpoint}`, expiresOn);
      // 2025-07-05: the newest user-delegation string-to-sign Azurite verifies (the SDK's default,
      // 2026-04-06, signs fields Azurite does not know yet); Azure accepts it as well.
      sas = generateBlobSASQueryParameters({ ...values, startsOn: new Date(Date.now() - 5 * 60_000), version: UDK_SAS_VERSION }, key, account.accountName).toString();
    }
    // The device SDK dials https://{hostName}/{container}/{blob}{sasToken}: with a path-style
    // endpoint (Azurite) the account is part of the "host name".
    const hostName = account.blobEndpoint.replace(/^https?:\/\//i, '');
    return { hostName, sasToken: `?${sas}`, blobUri: this.blobUri(account, target.containerName, blobName) };
  }

  async blobProperties(target: StorageTarget, blobName: string): Promise<{ size: number; lastModified: Date; blobUri: string } | undefined> {
    const { client, account } = this.serviceClient(target);
    try {
      const p = await client.getContainerClient(target.containerName).getBlobClient(blobName).getProperties();
      return { size: p.contentLength ?? 0, lastModified: p.lastModified ?? new Date(), blobUri: this.blobUri(account, target.containerName, blobName) };
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return undefined;
      throw e;
    }
  }

  /** Creates the container if it is missing. */
  async ensureContainer(target: Pick<StorageTarget, 'connectionString' | 'credential' | 'containerName'>): Promise<void> {
    await this.serviceClient(target).client.getContainerClient(target.containerName).createIfNotExists();
  }

  // ---- import/export: containers named by URI (with a SAS), or reached as an identity ----

  private container(ref: ContainerRef): ContainerClient {
    return new ContainerClient(ref.uri, this.pipeline(ref.credential ? (ref.credential as TokenCredential) : new AnonymousCredential()));
  }

  async size(ref: ContainerRef, blobName: string): Promise<number> {
    return (await this.container(ref).getBlobClient(blobName).getProperties()).contentLength ?? 0;
  }

  async *readLines(ref: ContainerRef, blobName: string, from: number): AsyncIterable<{ line: string; end: number }> {
    const size = await this.size(ref, blobName);
    if (from >= size) return;
    const download = await this.container(ref).getBlobClient(blobName).download(from);
    const body = download.readableStreamBody;
    if (!body) return;
    let carry = Buffer.alloc(0);
    let offset = from;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      let buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      let nl: number;
      while ((nl = buf.indexOf(0x0a)) >= 0) {
        offset += nl + 1;
        yield { line: buf.subarray(0, nl).toString('utf8').replace(/\r$/, ''), end: offset };
        buf = buf.subarray(nl + 1);
      }
      carry = Buffer.from(buf);
    }
    if (carry.length) yield { line: carry.toString('utf8'), end: offset + carry.length };
  }

  async writeLines(ref: ContainerRef, blobName: string, lines: AsyncIterable<string>): Promise<void> {
    const blob = this.container(ref).getBlockBlobClient(blobName);
    await blob.uploadStream(Readable.from(lines), 4 * 1024 * 1024, 2);
  }

  async appendLines(ref: ContainerRef, blobName: string, lines: string[]): Promise<void> {
    const blob = this.container(ref).getAppendBlobClient(blobName);
    await blob.createIfNotExists();
    const text = lines.map((l) => `${l}\n`).join('');
    await blob.appendBlock(text, Buffer.byteLength(text));
  }

  private blobUri(account: StorageAccount, container: string, blobName: string): string {
    return `${account.blobEndpoint}/${container}/${blobName.split('/').map(encodeURIComponent).join('/')}`;
  }

  private async delegationKey(client: BlobServiceClient, cacheKey: string, until: Date) {
    const cached = this.delegationKeys.get(cacheKey);
    if (cached && cached.expiresOn > until.getTime()) return cached.key;
    // A key for a day (at most seven are allowed), so that most uploads reuse it.
    const startsOn = new Date(Date.now() - 5 * 60_000);
    const expiresOn = new Date(Math.max(Date.now() + 24 * 3600_000, until.getTime() + 60_000));
    const key = await client.getUserDelegationKey(startsOn, expiresOn);
    this.delegationKeys.set(cacheKey, { key, expiresOn: expiresOn.getTime() });
    return key;
  }
}
