import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { EmbeddedStorage } from '../hub/files/fileUploads.js';

const require = createRequire(import.meta.url);

/** Azurite's one account (its well-known development account and key). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
/** The container file uploads go to when none is configured. */
export const DEFAULT_UPLOAD_CONTAINER = 'fileuploads';

export interface EmbeddedAzurite extends EmbeddedStorage {
  port: number;
  blobEndpoint: string;
  close(): Promise<void>;
}

/** Path-style: the account is the first path segment. */
export function embeddedBlobEndpoint(hostName: string, port: number): string {
  const host = hostName.includes(':') ? `[${hostName}]` : hostName;
  return `https://${host}:${port}/${AZURITE_ACCOUNT}`;
}

export function embeddedStorageConnectionString(hostName: string, port: number): string {
  return `DefaultEndpointsProtocol=https;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${embeddedBlobEndpoint(hostName, port)};`;
}

interface AzuriteServer {
  start(): Promise<void>;
  close(): Promise<void>;
  clean?(): Promise<void>;
  getHttpServerAddress(): string;
}

/**
 * Azurite's blob service in this process: data under `<dataDir>/azurite`, HTTPS with the hub's
 * server certificate (from Fleethub's CA), OAuth on (`basic`: tokens from Fleethub's token service
 * are accepted for https://storage.azure.com), path-style URLs only (`https://host:port/account`).
 */
export async function startEmbeddedAzurite(options: { dataDir: string; bind: string; hostName: string; port: number; certPath: string; keyPath: string }): Promise<EmbeddedAzurite> {
  const location = join(options.dataDir, 'azurite');
  mkdirSync(location, { recursive: true, mode: 0o700 });
  const BlobServer = require('azurite/dist/src/blob/BlobServer').default as new (config: unknown) => AzuriteServer;
  const BlobConfiguration = require('azurite/dist/src/blob/BlobConfiguration').default as new (...args: unknown[]) => unknown;
  const config = new BlobConfiguration(
    options.bind,
    options.port,
    undefined, // keep-alive timeout: Azurite's default
    join(location, '__azurite_db_blob__.json'),
    join(location, '__azurite_db_blob_extent__.json'),
    [{ locationId: 'Default', locationPath: join(location, '__blobstorage__'), maxConcurrency: 10 }],
    false, // access log
    undefined,
    false, // debug log
    undefined,
    true, // loose: ignore headers Azurite does not know
    true, // skip the API version check: the SDKs may be newer than Azurite
    options.certPath,
    options.keyPath,
    '',
    'basic',
    true, // path-style URLs only, whatever the host name
    false,
  );
  const server = new BlobServer(config);
  await server.start();
  const port = Number(new URL(server.getHttpServerAddress().replace(/^(https?:\/\/)(.*):(\d+)$/, (_m, p, _h, n) => `${p}x:${n}`)).port);
  const blobEndpoint = embeddedBlobEndpoint(options.hostName, port);
  return {
    port,
    blobEndpoint,
    connectionString: embeddedStorageConnectionString(options.hostName, port),
    endpointConnectionString: `DefaultEndpointsProtocol=https;AccountName=${AZURITE_ACCOUNT};BlobEndpoint=${blobEndpoint};`,
    defaultContainer: DEFAULT_UPLOAD_CONTAINER,
    close: () => server.close(),
  };
}
