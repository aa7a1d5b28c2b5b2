/**
 * The address of an Event Hubs or Service Bus endpoint as connection strings and ARM resources give it:
 * `sb://{host}/`, with `:{port}` only when the port is not the one the scheme implies (5671, AMQP over
 * TLS; Azure's addresses never have one; 5672 for the plain emulator endpoint). 0 (not known) is left out.
 */
export function sbEndpoint(host: string, port: number | undefined, impliedPort = 5671): string {
  return `sb://${host}${port && port !== impliedPort ? `:${port}` : ''}/`;
}
