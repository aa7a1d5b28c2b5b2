/**
 * One error type for the whole hub. `code` is IoT Hub's (or DPS's) error code name, as it
 * appears in the `iothub-errorcode` header and in the `ErrorCode:<code>;<message>` body.
 * Each protocol adapter maps it to its own wire form.
 */
export class HubError extends Error {
  constructor(
    readonly code: HubErrorCode,
    message: string,
    readonly status: number = defaultStatus[code] ?? 400,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

/** The codes Fleethub raises, with the HTTP status IoT Hub pairs them with. */
const defaultStatus = {
  InvalidProtocolVersion: 400,
  InvalidOperation: 400,
  ArgumentInvalid: 400,
  ArgumentNull: 400,
  IotHubFormatError: 400,
  DeviceDefinedMultipleTimes: 400,
  CannotRegisterModuleToModule: 400,
  IotHubUnauthorizedAccess: 401,
  IotHubUnauthorized: 401,
  IotHubQuotaExceeded: 403,
  DeviceMaximumQueueDepthExceeded: 403,
  DeviceMaximumActiveFileUploadLimitExceeded: 403,
  JobQuotaExceeded: 403,
  DeviceNotFound: 404,
  ModuleNotFound: 404,
  DeviceNotOnline: 404,
  JobNotFound: 404,
  ConfigurationNotFound: 404,
  NotFound: 404,
  DeviceAlreadyExists: 409,
  ModuleAlreadyExistsOnDevice: 409,
  JobAlreadyExists: 409,
  ConfigurationAlreadyExists: 409,
  PreconditionFailed: 412,
  DeviceMessageLockLost: 412,
  MessageTooLarge: 413,
  TooManyDevices: 413,
  TooManyModulesOnDevice: 413,
  ThrottlingException: 429,
  ServerError: 500,
  ServiceUnavailable: 503,
  GatewayTimeout: 504,
} as const;

export type HubErrorCode = keyof typeof defaultStatus;

export const errors = {
  argument: (message: string) => new HubError('ArgumentInvalid', message),
  deviceNotFound: (deviceId: string) => new HubError('DeviceNotFound', `Device ${deviceId} not registered`),
  moduleNotFound: (deviceId: string, moduleId: string) =>
    new HubError('ModuleNotFound', `Module ${moduleId} on device ${deviceId} not registered`),
  deviceExists: (deviceId: string) =>
    new HubError('DeviceAlreadyExists', `A device with ID '${deviceId}' is already registered.`),
  moduleExists: (deviceId: string, moduleId: string) =>
    new HubError('ModuleAlreadyExistsOnDevice', `A module with ID '${moduleId}' is already registered on device '${deviceId}'.`),
  preconditionFailed: (what: string) =>
    new HubError('PreconditionFailed', `Precondition failed: ${what} has been modified (ETag mismatch).`),
  unauthorized: (reason = 'Unauthorized') => new HubError('IotHubUnauthorizedAccess', reason),
};
