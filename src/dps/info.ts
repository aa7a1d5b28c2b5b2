import type { DpsSharedAccessPolicy } from './types.js';

/** What `fleethub info` says about the provisioning service. */
export interface DpsInfo {
  idScope: string;
  hostName: string;
  /** The global device endpoint devices register at. */
  deviceEndpoint: string;
  serviceConnectionString: string;
}

export function dpsInfo(instance: { idScope: string; hostName: string; deviceEndpoint: string }, policies: DpsSharedAccessPolicy[]): DpsInfo {
  const owner = policies.find((p) => p.keyName === 'provisioningserviceowner');
  return {
    idScope: instance.idScope,
    hostName: instance.hostName,
    deviceEndpoint: instance.deviceEndpoint,
    serviceConnectionString: owner
      ? `HostName=${instance.hostName};SharedAccessKeyName=${owner.keyName};SharedAccessKey=${owner.primaryKey}`
      : '',
  };
}
