/**
 * `fleethub hub show|update`: a hub resource's settings through the control plane's ARM API (the
 * one writer of a hub's settings), with `az iot hub update`'s file-upload, cloud-to-device and
 * feedback options and units (TTLs in hours, lock durations in seconds;
 * `--fileupload-storage-identity [system]` or a user-assigned identity's resource id). Each update is a read-modify-write guarded by the
 * resource's etag, so a concurrent change is refused rather than overwritten.
 */
import type { Command } from 'commander';
import { readRuntime } from '../info.js';
import { ArmClient } from './control.js';
import { cliConfig, CliError, type GlobalOptions } from './context.js';

const API_VERSION = '2023-06-30';

interface UpdateOptions {
  hub?: string;
  resourceGroup?: string;
  fileuploadStorageConnectionstring?: string;
  fileuploadStorageContainerName?: string;
  fileuploadSasTtl?: string;
  fileuploadNotifications?: string;
  fileuploadNotificationTtl?: string;
  fileuploadNotificationMaxDeliveryCount?: string;
  fileuploadNotificationLockDuration?: string;
  fileuploadStorageAuthType?: string;
  fileuploadStorageIdentity?: string;
  c2dMaxDeliveryCount?: string;
  c2dTtl?: string;
  feedbackMaxDeliveryCount?: string;
  feedbackLockDuration?: string;
  feedbackTtl?: string;
}

/** A whole number within bounds, or a CliError naming the option. */
function integer(value: string, option: string, min: number, max: number): number {
  if (!/^\d+$/.test(value.trim())) throw new CliError(`${option} takes a whole number (got '${value}')`);
  const n = Number(value);
  if (n < min || n > max) throw new CliError(`${option} must be from ${min} to ${max} (got ${n})`);
  return n;
}

function boolean(value: string, option: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new CliError(`${option} takes true or false (got '${value}')`);
}

/** Applies the file-upload options to a hub resource body (as GET returned it); returns whether any was given. */
export function applyFileUploadOptions(hub: any, o: UpdateOptions): boolean {
  const props = (hub.properties ??= {});
  const storage = ((props.storageEndpoints ??= {}).$default ??= { sasTtlAsIso8601: 'PT1H', connectionString: '', containerName: '' });
  const notifications = ((props.messagingEndpoints ??= {}).fileNotifications ??= { lockDurationAsIso8601: 'PT1M', ttlAsIso8601: 'PT1H', maxDeliveryCount: 10 });
  let changed = false;
  if (o.fileuploadStorageConnectionstring !== undefined) {
    storage.connectionString = o.fileuploadStorageConnectionstring;
    changed = true;
  }
  if (o.fileuploadStorageContainerName !== undefined) {
    storage.containerName = o.fileuploadStorageContainerName;
    changed = true;
  }
  if (o.fileuploadSasTtl !== undefined) {
    storage.sasTtlAsIso8601 = `PT${integer(o.fileuploadSasTtl, '--fileupload-sas-ttl', 1, 24)}H`;
    changed = true;
  }
  if (o.fileuploadStorageAuthType !== undefined) {
    const t = o.fileuploadStorageAuthType.trim().toLowerCase();
    if (t !== 'keybased' && t !== 'identitybased') throw new CliError(`--fileupload-storage-auth-type is keyBased or identityBased (got '${o.fileuploadStorageAuthType}')`);
    storage.authenticationType = t === 'keybased' ? 'keyBased' : 'identityBased';
    if (storage.authenticationType === 'keyBased') delete storage.identity;
    changed = true;
  }
  if (o.fileuploadStorageIdentity !== undefined) {
    const id = o.fileuploadStorageIdentity.trim();
    if (id !== '[system]' && !id.startsWith('/')) throw new CliError(`--fileupload-storage-identity is [system] or a user-assigned identity's resource id (got '${id}')`);
    storage.authenticationType = 'identityBased';
    storage.identity = { userAssignedIdentity: id === '[system]' ? null : id };
    changed = true;
  }
  if (o.fileuploadNotifications !== undefined) {
    props.enableFileUploadNotifications = boolean(o.fileuploadNotifications, '--fileupload-notifications');
    changed = true;
  }
  if (o.fileuploadNotificationTtl !== undefined) {
    notifications.ttlAsIso8601 = `PT${integer(o.fileuploadNotificationTtl, '--fileupload-notification-ttl', 1, 48)}H`;
    changed = true;
  }
  if (o.fileuploadNotificationMaxDeliveryCount !== undefined) {
    notifications.maxDeliveryCount = integer(o.fileuploadNotificationMaxDeliveryCount, '--fileupload-notification-max-delivery-count', 1, 100);
    changed = true;
  }
  if (o.fileuploadNotificationLockDuration !== undefined) {
    notifications.lockDurationAsIso8601 = `PT${integer(o.fileuploadNotificationLockDuration, '--fileupload-notification-lock-duration', 5, 300)}S`;
    changed = true;
  }
  return changed;
}

/** Applies the cloud-to-device and feedback options (`az iot hub update`'s units) to a hub resource body; returns whether any was given. */
export function applyCloudToDeviceOptions(hub: any, o: UpdateOptions): boolean {
  const props = (hub.properties ??= {});
  const c2d = (props.cloudToDevice ??= { maxDeliveryCount: 10, defaultTtlAsIso8601: 'PT1H' });
  const feedback = (c2d.feedback ??= { lockDurationAsIso8601: 'PT1M', ttlAsIso8601: 'PT1H', maxDeliveryCount: 10 });
  let changed = false;
  if (o.c2dMaxDeliveryCount !== undefined) {
    c2d.maxDeliveryCount = integer(o.c2dMaxDeliveryCount, '--c2d-max-delivery-count', 1, 100);
    changed = true;
  }
  if (o.c2dTtl !== undefined) {
    c2d.defaultTtlAsIso8601 = `PT${integer(o.c2dTtl, '--c2d-ttl', 1, 48)}H`;
    changed = true;
  }
  if (o.feedbackMaxDeliveryCount !== undefined) {
    feedback.maxDeliveryCount = integer(o.feedbackMaxDeliveryCount, '--feedback-max-delivery-count', 1, 100);
    changed = true;
  }
  if (o.feedbackLockDuration !== undefined) {
    feedback.lockDurationAsIso8601 = `PT${integer(o.feedbackLockDuration, '--feedback-lock-duration', 5, 300)}S`;
    changed = true;
  }
  if (o.feedbackTtl !== undefined) {
    feedback.ttlAsIso8601 = `PT${integer(o.feedbackTtl, '--feedback-ttl', 1, 48)}H`;
    changed = true;
  }
  return changed;
}

export function hubCommand(program: Command): void {
  const hubResourceId = (c: ArmClient, rg: string | undefined, hub: string | undefined) => {
    const name = hub ?? readRuntime(cliConfig(program.opts<GlobalOptions>()).dataDir)?.hubName;
    if (!name) throw new CliError('Give --hub');
    return `${c.subscriptionScope}/resourceGroups/${rg ?? c.tenancy.defaultResourceGroup}/providers/Microsoft.Devices/IotHubs/${name}`;
  };
  const print = (value: unknown) => process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  const hub = program.command('hub').description("a hub resource's settings, through the control plane");
  hub
    .command('show')
    .description('the hub resource, as `az iot hub show` prints it')
    .option('--hub <name>', 'the hub (default: the primary hub)')
    .option('--resource-group <rg>')
    .action(async (o: UpdateOptions) => {
      const c = await ArmClient.connect(cliConfig(program.opts<GlobalOptions>()));
      print(await c.call('GET', hubResourceId(c, o.resourceGroup, o.hub), API_VERSION));
    });
  hub
    .command('update')
    .description("change a hub's settings (file upload, cloud-to-device and feedback: the options of `az iot hub update`)")
    .option('--hub <name>', 'the hub (default: the primary hub)')
    .option('--resource-group <rg>')
    .option('--fileupload-storage-connectionstring, --fcs <cs>', "the storage account's connection string ('' for the embedded storage)")
    .option('--fileupload-storage-container-name, --fcn <name>', 'the container uploads go to')
    .option('--fileupload-sas-ttl, --fst <hours>', 'how long the SAS a device gets is valid, in hours (1-24)')
    .option('--fileupload-storage-auth-type, --fsa <type>', 'keyBased or identityBased')
    .option('--fileupload-storage-identity, --fsi <id>', "[system], or a user-assigned identity's resource id (implies identityBased)")
    .option('--fileupload-notifications, --fn <bool>', 'send file-upload notifications to the service (true/false)')
    .option('--fileupload-notification-ttl, --fnt <hours>', 'how long a notification is kept, in hours (1-48)')
    .option('--fileupload-notification-max-delivery-count, --fnd <n>', 'deliveries of a notification before it is dropped (1-100)')
    .option('--fileupload-notification-lock-duration, --fnld <seconds>', 'lock duration of a received notification, in seconds (5-300)')
    .option('--c2d-max-delivery-count, --cdd <n>', 'deliveries of a cloud-to-device message before it is dead-lettered (1-100)')
    .option('--c2d-ttl, --ct <hours>', 'time to live of a cloud-to-device message sent without one, in hours (1-48)')
    .option('--feedback-max-delivery-count, --fd <n>', 'deliveries of a feedback record before it is dropped (1-100)')
    .option('--feedback-lock-duration, --fld <seconds>', 'lock duration of a received feedback batch, in seconds (5-300)')
    .option('--feedback-ttl, --ft <hours>', 'how long feedback records are kept, in hours (1-48)')
    .action(async (a: Record<string, string | undefined>) => {
      // Commander names each option by its last flag (az's short alias).
      const o: UpdateOptions = {
        hub: a.hub,
        resourceGroup: a.resourceGroup,
        fileuploadStorageConnectionstring: a.fcs,
        fileuploadStorageContainerName: a.fcn,
        fileuploadSasTtl: a.fst,
        fileuploadStorageAuthType: a.fsa,
        fileuploadStorageIdentity: a.fsi,
        fileuploadNotifications: a.fn,
        fileuploadNotificationTtl: a.fnt,
        fileuploadNotificationMaxDeliveryCount: a.fnd,
        fileuploadNotificationLockDuration: a.fnld,
        c2dMaxDeliveryCount: a.cdd,
        c2dTtl: a.ct,
        feedbackMaxDeliveryCount: a.fd,
        feedbackLockDuration: a.fld,
        feedbackTtl: a.ft,
      };
      const c = await ArmClient.connect(cliConfig(program.opts<GlobalOptions>()));
      const id = hubResourceId(c, o.resourceGroup, o.hub);
      const current = await c.call('GET', id, API_VERSION);
      const fileUpload = applyFileUploadOptions(current, o);
      if (!applyCloudToDeviceOptions(current, o) && !fileUpload) throw new CliError('Nothing to change: give at least one setting (see --help)');
      print(await c.call('PUT', id, API_VERSION, current, { 'if-match': current.etag }));
    });
}
