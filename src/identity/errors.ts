/**
 * A refusal by the identity area, with the code and HTTP status Azure Resource Manager (or Azure
 * AD) gives it, so that the ARM adapter can answer `{error:{code,message}}` as ARM does.
 */
export class IdentityError extends Error {
  override name = 'IdentityError';
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}
