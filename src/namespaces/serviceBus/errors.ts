/**
 * Service Bus's own failures, in its words; each protocol maps the code to its wire form
 * (AMQP conditions, $management status codes) as Service Bus does, so that @azure/service-bus
 * raises its own error codes (MessagingEntityNotFound, MessageLockLost, …).
 */
export type ServiceBusErrorCode =
  | 'MessagingEntityNotFound'
  | 'MessagingEntityAlreadyExists'
  | 'Unauthorized'
  | 'MessageLockLost'
  | 'MessageNotFound'
  | 'InvalidArgument'
  | 'MessageSizeExceeded'
  | 'QuotaExceeded'
  | 'NotImplemented'
  | 'SessionsNotSupported';

export class ServiceBusError extends Error {
  constructor(
    readonly code: ServiceBusErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ServiceBusError';
  }
}

export const sbErrors = {
  entityNotFound: (namespace: string, path: string) =>
    new ServiceBusError('MessagingEntityNotFound', `The messaging entity '${namespace}:${path}' could not be found.`),
  alreadyExists: (what: string) => new ServiceBusError('MessagingEntityAlreadyExists', `The messaging entity '${what}' already exists.`),
  argument: (message: string) => new ServiceBusError('InvalidArgument', message),
  lockLost: () =>
    new ServiceBusError(
      'MessageLockLost',
      "The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue, or was received by a different receiver instance.",
    ),
};
