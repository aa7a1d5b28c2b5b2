import { HubError } from '../../core/errors.js';
import type { DeviceSession } from './handler.js';

/** Splits `a/b/?k=v&k2=v2` into the path segments and the decoded query. */
export function parseTopic(topic: string): { segments: string[]; query: URLSearchParams } {
  const q = topic.indexOf('?');
  const path = q < 0 ? topic : topic.slice(0, q);
  const segments = path.split('/');
  if (segments.length > 1 && segments[segments.length - 1] === '') segments.pop();
  return { segments, query: new URLSearchParams(q < 0 ? '' : topic.slice(q + 1)) };
}

export const identityKey = (session: Pick<DeviceSession, 'deviceId' | 'moduleId'>) =>
  session.moduleId === undefined ? session.deviceId : `${session.deviceId}/${session.moduleId}`;

/** IoT Hub's numeric error codes, as MQTT status bodies carry them. */
const numericCodes: Record<string, number> = {
  ArgumentInvalid: 400004,
  IotHubFormatError: 400005,
  DeviceNotFound: 404001,
  ModuleNotFound: 404010,
  PreconditionFailed: 412002,
  MessageTooLarge: 413001,
  ThrottlingException: 429001,
  ServerError: 500001,
};

/** The body of an error on an MQTT status topic: `{errorCode, message}` (the device SDK raises `message`). */
export function mqttErrorBody(error: HubError): string {
  const errorCode = numericCodes[error.code] ?? error.status * 1000;
  return JSON.stringify({ errorCode, message: error.message, timestampUtc: new Date().toISOString() });
}

/** A protocol violation: IoT Hub closes the connection. */
export const violation = (message: string) => new HubError('IotHubUnauthorizedAccess', message);
