import type { Connection } from 'rhea';

/**
 * SASL as IoT Hub offers it: ANONYMOUS (the client then authenticates through CBS put-token),
 * EXTERNAL (X.509 client certificate), and PLAIN with a SAS token as the password (`<policy>@sas.root.<hub>` or `<deviceId>@sas.<hub>`
 * as the user name). PLAIN only captures the token here; it is validated like a put-token when
 * the connection opens, and a bad one closes the connection with amqp:unauthorized-access.
 */
class PlainTokenMechanism {
  outcome: boolean | undefined;
  username: string | undefined;
  token: string | undefined;

  start(response: Buffer): void {
    const fields = response ? response.toString('utf8').split('\0') : [];
    if (fields.length !== 3 || !/^\s*SharedAccessSignature\s/.test(fields[2] ?? '')) {
      this.outcome = false;
      return;
    }
    this.username = fields[1];
    this.token = fields[2];
    this.outcome = true;
  }
}

class AnonymousMechanism {
  outcome: boolean | undefined;
  username: string | undefined;

  start(response?: Buffer): void {
    this.outcome = true;
    this.username = response ? response.toString('utf8') : 'anonymous';
  }
}

/**
 * EXTERNAL: the identity is the TLS client certificate, which is checked against the device the
 * first device link names (a connection without one gets no device links).
 */
class ExternalMechanism {
  outcome: boolean | undefined;
  username: string | undefined;

  start(): void {
    this.outcome = true;
    this.username = 'external';
  }
}

export function tokenMechanisms(): Record<string, () => unknown> {
  return {
    ANONYMOUS: () => new AnonymousMechanism(),
    PLAIN: () => new PlainTokenMechanism(),
    EXTERNAL: () => new ExternalMechanism(),
  };
}

/** The mechanism object that authenticated a connection through SASL, if it used SASL. */
export function saslMechanism(connection: Connection): unknown {
  const transport = (connection as unknown as { sasl_transport?: { mechanism?: unknown; transports?: Record<number, { mechanism?: unknown }> } }).sasl_transport;
  return transport?.transports?.[3]?.mechanism ?? transport?.mechanism;
}

/** The user name and SAS token a connection gave through SASL PLAIN, if it did. */
export function saslPlain(connection: Connection): { username: string; token: string } | undefined {
  const mechanism = saslMechanism(connection);
  return mechanism instanceof PlainTokenMechanism && mechanism.token ? { username: mechanism.username ?? '', token: mechanism.token } : undefined;
}
