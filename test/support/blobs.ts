import { BlobServiceClient, ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../../src/storage/azurite.js';

/**
 * A container of the hub's embedded Azurite (from `storageConnectionString` of `fleethub info`),
 * created if needed, and its URI with a SAS good for an hour and every permission: what an
 * import/export job or a test's own client is given.
 */
export async function sasContainer(storageConnectionString: string, name: string): Promise<{ client: ContainerClient; sasUri: string }> {
  const client = BlobServiceClient.fromConnectionString(storageConnectionString).getContainerClient(name);
  await client.createIfNotExists();
  const sas = generateBlobSASQueryParameters(
    { containerName: name, permissions: ContainerSASPermissions.parse('racwdl'), expiresOn: new Date(Date.now() + 3600_000) },
    new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
  ).toString();
  return { client, sasUri: `${client.url}?${sas}` };
}
