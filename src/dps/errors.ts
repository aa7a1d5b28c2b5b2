/**
 * DPS's errors. Unlike IoT Hub's `ErrorCode:<name>;<text>` bodies, DPS answers
 * `{"errorCode":<number>,"trackingId":…,"message":…,"timestampUtc":…}` where the number is the
 * HTTP status followed by a three-digit detail (401002, 404201, …). The Azure SDKs map the status
 * to their own error classes (404 → 'Not found', 412 → InvalidEtagError, 400 → ArgumentError).
 */
export class DpsError extends Error {
  readonly status: number;

  constructor(
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'DpsError';
    this.status = Math.floor(errorCode / 1000);
  }
}

/** The detail codes Fleethub uses; those DPS is seen to send keep DPS's numbers. */
export const dpsErrors = {
  /** The request body is not JSON or not the expected shape. */
  badFormat: (message: string) => new DpsError(400001, message),
  /** A field holds a value DPS does not accept (id, certificate, hub, policy, …). */
  invalid: (message: string) => new DpsError(400004, message),
  unauthorized: (message = 'Unauthorized') => new DpsError(401002, message),
  enrollmentNotFound: (id: string) => new DpsError(404201, `Enrollment with registration id ${id} not found.`),
  enrollmentGroupNotFound: (id: string) => new DpsError(404202, `Enrollment group with id ${id} not found.`),
  registrationNotFound: (id: string) => new DpsError(404203, `Device registration with registration id ${id} not found.`),
  certificateNotFound: (name: string) => new DpsError(404204, `Certificate ${name} not found.`),
  notFound: (message: string) => new DpsError(404000, message),
  conflict: (message: string) => new DpsError(409201, message),
  preconditionFailed: (what: string) => new DpsError(412002, `Precondition failed: the etag does not match the current ${what}.`),
  tooLarge: (message: string) => new DpsError(413001, message),
  unsupportedMediaType: (message: string) => new DpsError(415001, message),
  internal: () => new DpsError(500000, 'Internal server error'),
};
