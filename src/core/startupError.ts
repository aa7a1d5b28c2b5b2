/** The process could not start as configured (a port in use, a bad certificate, …): printed without a stack. */
export class StartupError extends Error {
  override name = 'StartupError';
}
