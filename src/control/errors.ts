/**
 * Azure Resource Manager's error: `{ error: { code, message } }` with an HTTP status. The control
 * plane's domain raises these; the ARM REST adapter writes them as ARM does.
 */
export class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ArmError';
  }
}

export const armErrors = {
  invalidContent: (message: string) => new ArmError(400, 'InvalidRequestContent', message),
  badRequest: (code: string, message: string) => new ArmError(400, code, message),
  subscriptionNotFound: (s: string) => new ArmError(404, 'SubscriptionNotFound', `The subscription '${s}' could not be found.`),
  resourceGroupNotFound: (rg: string) => new ArmError(404, 'ResourceGroupNotFound', `Resource group '${rg}' could not be found.`),
  resourceNotFound: (type: string, name: string, rg: string) =>
    new ArmError(
      404,
      'ResourceNotFound',
      `The Resource '${type}/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
    ),
  notFound: (message: string) => new ArmError(404, 'NotFound', message),
  conflict: (code: string, message: string) => new ArmError(409, code, message),
  /** A feature Fleethub does not have yet, asked for with a non-default value. */
  notSupported: (path: string, value: unknown) =>
    new ArmError(
      400,
      'FeatureNotSupported',
      `'${path}' = ${JSON.stringify(value)} is not supported by Fleethub yet (only its default is); see docs/compatibility.md.`,
    ),
};
