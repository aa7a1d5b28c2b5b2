import { HubError, type HubErrorCode } from '../../core/errors.js';

/** An AMQP error (the `error` field of detach, close, reject). */
export interface AmqpError {
  condition: string;
  description: string;
}

/**
 * IoT Hub's AMQP conditions for its error codes, chosen so that the Azure SDKs raise their own
 * error classes (azure-iot-amqp-base's translateError, core-amqp's ConditionErrorNameMapper).
 */
const conditions: Partial<Record<HubErrorCode, string>> = {
  IotHubUnauthorizedAccess: 'amqp:unauthorized-access',
  IotHubUnauthorized: 'amqp:unauthorized-access',
  DeviceNotFound: 'amqp:not-found',
  ModuleNotFound: 'amqp:not-found',
  NotFound: 'amqp:not-found',
  DeviceNotOnline: 'amqp:not-found',
  DeviceMaximumQueueDepthExceeded: 'amqp:resource-limit-exceeded',
  IotHubQuotaExceeded: 'com.microsoft:quota-exceeded',
  DeviceMessageLockLost: 'com.microsoft:message-lock-lost',
  PreconditionFailed: 'com.microsoft:precondition-failed',
  MessageTooLarge: 'amqp:link:message-size-exceeded',
  ThrottlingException: 'com.microsoft:device-container-throttled',
  ArgumentInvalid: 'com.microsoft:argument-error',
  ArgumentNull: 'com.microsoft:argument-error',
  IotHubFormatError: 'com.microsoft:argument-error',
  InvalidOperation: 'amqp:not-allowed',
  DeviceAlreadyExists: 'com.microsoft:device-already-exists',
  GatewayTimeout: 'com.microsoft:timeout',
  ServiceUnavailable: 'amqp:internal-error',
  ServerError: 'amqp:internal-error',
};

export function amqpError(e: unknown): AmqpError {
  if (e instanceof HubError) return { condition: conditions[e.code] ?? 'amqp:internal-error', description: e.message };
  return { condition: 'amqp:internal-error', description: 'Internal error' };
}

export const amqpErrors = {
  notFound: (description: string): AmqpError => ({ condition: 'amqp:not-found', description }),
  unauthorized: (description: string): AmqpError => ({ condition: 'amqp:unauthorized-access', description }),
  notAllowed: (description: string): AmqpError => ({ condition: 'amqp:not-allowed', description }),
  invalidField: (description: string): AmqpError => ({ condition: 'amqp:invalid-field', description }),
  notImplemented: (description: string): AmqpError => ({ condition: 'amqp:not-implemented', description }),
};
