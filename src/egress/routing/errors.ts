/**
 * Failures of the Azure SDKs (Event Hubs, Service Bus, Blob) as routing's SinkError kinds, with a
 * message fit for `lastKnownError`: what failed and why, never a key, signature or token.
 */
import { SinkError, type SinkFailureKind } from '../../hub/routing/types.js';

interface SdkError {
  name?: string;
  code?: string;
  condition?: string;
  statusCode?: number;
  message?: string;
  details?: { errorCode?: string };
}

const UNAUTHORIZED = new Set(['UnauthorizedError', 'UnauthorizedAccess', 'amqp:unauthorized-access', 'AuthenticationFailed', 'AuthorizationFailure', 'AuthorizationPermissionMismatch', 'CredentialUnavailableError', 'AuthenticationRequiredError', 'NoMatchingSecretKeyError', 'InvalidAuthenticationInfo', 'InvalidSignature']);
const NOT_FOUND = new Set(['MessagingEntityNotFoundError', 'MessagingEntityNotFound', 'amqp:not-found', 'ContainerNotFound', 'ResourceNotFound', 'ENOTFOUND', 'MessagingEntityDisabled', 'MessagingEntityDisabledError', 'com.microsoft:entity-disabled']);
const THROTTLED = new Set(['ServerBusyError', 'ServiceBusy', 'com.microsoft:server-busy', 'QuotaExceeded', 'QuotaExceededError', 'amqp:resource-limit-exceeded', 'ServerBusy', 'OperationTimedOut']);
const INVALID = new Set(['MessageTooLargeError', 'MessageSizeExceeded', 'amqp:link:message-size-exceeded', 'RequestBodyTooLarge', 'InvalidInput', 'InvalidOperationError']);

/** Keys, signatures and tokens cut out of a message that might echo them. */
export function scrubSecrets(text: string): string {
  return text
    .replace(/(SharedAccessKey|AccountKey|SharedAccessSignature)=[^;"'\s]+/gi, '$1=***')
    .replace(/([?&]sig=)[^&"'\s]+/gi, '$1***')
    .replace(/(sr=[^&\s]*&sig=)[^&"'\s]+/gi, '$1***')
    .replace(/\bBearer\s+[A-Za-z0-9._-]+/g, 'Bearer ***')
    .replace(/\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, '***');
}

function kindOf(e: SdkError): SinkFailureKind {
  const codes = [e.code, e.condition, e.name, e.details?.errorCode].filter((c): c is string => typeof c === 'string');
  if (codes.some((c) => UNAUTHORIZED.has(c))) return 'unauthorized';
  if (codes.some((c) => INVALID.has(c))) return 'invalid';
  if (codes.some((c) => NOT_FOUND.has(c))) return 'notFound';
  if (codes.some((c) => THROTTLED.has(c))) return 'throttled';
  switch (e.statusCode) {
    case 401:
    case 403:
      return 'unauthorized';
    case 404:
      return 'notFound';
    case 413:
      return 'invalid';
    case 429:
    case 503:
      return 'throttled';
  }
  // Token acquisition failures (the hub's identity turned off, no role to get a token) say so in words.
  if (/\b(unauthori[sz]ed|forbidden|no longer exists|not enabled|not attached)\b/i.test(e.message ?? '')) return 'unauthorized';
  return 'transient';
}

/** The SinkError for `e`, raised while doing `what` (e.g. "sending to event hub 'orders'"). */
export function sinkError(e: unknown, what: string): SinkError {
  if (e instanceof SinkError) return e;
  // The SDKs' retries end in an AggregateError of each attempt's error: the first says why.
  while (e instanceof AggregateError && e.errors.length) e = e.errors[0];
  const err = (e ?? {}) as SdkError;
  const code = err.details?.errorCode ?? err.code ?? err.condition ?? (err.statusCode ? `HTTP ${err.statusCode}` : undefined);
  const message = scrubSecrets(String(err.message ?? e).split('\n')[0]!.slice(0, 500));
  return new SinkError(kindOf(err), `${what} failed${code ? ` (${code})` : ''}: ${message}`);
}
