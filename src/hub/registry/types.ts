/** The identity registry's records, in the shape IoT Hub returns them over REST. */

export type AuthenticationType = 'sas' | 'selfSigned' | 'certificateAuthority' | 'none';

export interface Authentication {
  type: AuthenticationType;
  symmetricKey: { primaryKey: string | null; secondaryKey: string | null };
  x509Thumbprint: { primaryThumbprint: string | null; secondaryThumbprint: string | null };
}

export interface Device {
  deviceId: string;
  generationId: string;
  etag: string;
  status: 'enabled' | 'disabled';
  statusReason: string | null;
  statusUpdatedTime: string;
  connectionState: 'Connected' | 'Disconnected';
  connectionStateUpdatedTime: string;
  lastActivityTime: string;
  cloudToDeviceMessageCount: number;
  authentication: Authentication;
  capabilities: { iotEdge: boolean };
  deviceScope?: string;
  parentScopes?: string[];
}

export interface Module {
  moduleId: string;
  deviceId: string;
  managedBy?: string;
  generationId: string;
  etag: string;
  connectionState: 'Connected' | 'Disconnected';
  connectionStateUpdatedTime: string;
  lastActivityTime: string;
  cloudToDeviceMessageCount: number;
  authentication: Authentication;
}

export interface RegistryStatistics {
  totalDeviceCount: number;
  enabledDeviceCount: number;
  disabledDeviceCount: number;
}
