/**
 * The device side of DPS over AMQP (TLS 5671 and WebSocket at /$iothub/websocket), as
 * azure-iot-provisioning-device-amqp speaks it, served by the same DeviceRegistrations service as
 * HTTPS and MQTT.
 *
 * - The device attaches a receiver and a sender on `{idScope}/registrations/{registrationId}` and
 *   sends requests with the application property `iotdps-operation-type`: `iotdps-register` (body
 *   `{registrationId, payload?}`) or `iotdps-get-operationstatus` (`iotdps-operation-id`). The
 *   answer is the RegistrationOperationStatus JSON in a data section, on the receiver, with the
 *   request's correlation id and `retry-after` (seconds) while assigning. A request DPS refuses
 *   is rejected with the AMQP condition of its status and DPS's error body as description (with
 *   `retry-after` in the error info when the device should retry).
 * - Symmetric key: SASL PLAIN, user `{idScope}/registrations/{registrationId}`, the SAS token as
 *   password, checked when the connection opens; a refusal closes the connection with
 *   `amqp:unauthorized-access` and DPS's error body as description, as DPS does.
 * - TPM: the SASL mechanism `TPM` (saslTpm.ts); requests are attested with the TPM credential it proved.
 * - X.509: the TLS client certificate. A refused certificate rejects each request with the same
 *   error rather than refusing the link attach as DPS does: azure-iot-provisioning-device-amqp
 *   1.9.1 never reports a refused attach over TLS (its receiver counts as attached, the later
 *   detach finds it tearing down, an exception inside rhea ends its socket, and register() fails
 *   only by its own timeout, 45 s here), while a rejected request reaches the caller at once.
 */
import { randomUUID } from 'node:crypto';
import rhea, { type Message, type Receiver, type Sender } from 'rhea';
import { DpsError, dpsErrors } from '../../../dps/errors.js';
import { type DeviceCredential, type DeviceRegistrations, type RegistrationOperation } from '../../../dps/registration/registration.js';
import type { AmqpError } from '../errors.js';
import { CreditQueue, type ClientConnection, type IncomingLink, type LinkRoute } from '../link.js';
import { messageBody, messageId } from '../messages.js';
import { clientCertificateChain } from '../peer.js';
import { saslMechanism } from '../sasl.js';
import { TpmSaslMechanism } from './saslTpm.js';
import type { PlainUserFamily } from '../server.js';

/** The registration node; the C SDK puts `amqps://{host}/` in front. */
const ADDRESS = /^(?:amqps?:\/\/[^/]+)?\/?([^/]+)\/registrations\/([^/]+)$/i;
const USER = /^([^/]+)\/registrations\/([^/]+)$/;

/** Answers kept for a device whose receiver is not attached yet (the oldest go first). */
const MAX_EARLY_ANSWERS = 16;

const OPERATION_TYPE = 'iotdps-operation-type';
const OPERATION_ID = 'iotdps-operation-id';
const REGISTER = 'iotdps-register';
const OPERATION_STATUS = 'iotdps-get-operationstatus';

/** Who a connection registers, once its credential is accepted. */
interface Registrant {
  idScope: string;
  registrationId: string;
  credential: DeviceCredential;
}

/** The AMQP condition the SDKs map to the error class of each DPS status. */
function condition(status: number): string {
  if (status === 401 || status === 403) return 'amqp:unauthorized-access';
  if (status === 404) return 'amqp:not-found';
  if (status === 429) return 'com.microsoft:device-container-throttled';
  if (status === 412) return 'com.microsoft:precondition-failed';
  if (status >= 500) return 'amqp:internal-error';
  return 'com.microsoft:argument-error';
}

/** DPS's refusal as an AMQP error: the condition of its status, its JSON error body as description. */
/** How long a device waits before retrying after a throttling or server error. */
const ERROR_RETRY_AFTER_SECONDS = 1;

function dpsAmqpError(e: unknown, trackingId: string = randomUUID()): AmqpError & { info?: Record<string, unknown> } {
  const err = e instanceof DpsError ? e : dpsErrors.internal();
  const description = JSON.stringify({ errorCode: err.errorCode, trackingId, message: err.message, timestampUtc: new Date().toISOString() });
  const retry = err.status === 429 || err.status >= 500;
  return { condition: condition(err.status), description, ...(retry ? { info: { 'retry-after': ERROR_RETRY_AFTER_SECONDS } } : {}) };
}

export interface DpsAmqp {
  routes: LinkRoute[];
  /** SASL PLAIN users `{idScope}/registrations/{registrationId}`. */
  plainUsers: PlainUserFamily;
  /** The SASL mechanism `TPM`. */
  saslMechanisms: Record<string, () => unknown>;
}

export function dpsRegistrationAmqp(registrations: DeviceRegistrations): DpsAmqp {
  /** Per connection: the SAS token its SASL PLAIN user gave (checked when the connection opened). */
  const sasTokens = new WeakMap<ClientConnection, string>();
  /** Per connection and registration: where answers go (the device's receiver). */
  const answers = new WeakMap<ClientConnection, Map<string, { out?: CreditQueue; early: Message[] }>>();

  const plainUsers: PlainUserFamily = {
    owns: (username) => USER.test(username),
    async opened(connection, username, password) {
      const [, idScope, registrationId] = USER.exec(username)!;
      sasTokens.set(connection, password);
      const ok = await registrations.authenticate(idScope!, registrationId!, { kind: 'sas', token: password });
      return ok ? undefined : dpsAmqpError(dpsErrors.unauthorized());
    },
  };

  /**
   * Who a link registers: the registration its address names, with the connection's credential
   * (the SASL PLAIN token, else the TLS client certificate). Every request attests it again, as
   * over HTTPS; a refusal rejects the request (see the module comment for why not the link).
   */
  function registrant(connection: ClientConnection, m: RegExpExecArray): Registrant {
    const tpm = saslMechanism(connection.rhea);
    if (tpm instanceof TpmSaslMechanism && tpm.registrant) return { idScope: m[1]!, registrationId: m[2]!, credential: tpm.registrant.credential };
    const token = sasTokens.get(connection);
    const chain = token === undefined ? clientCertificateChain(connection.rhea) : undefined;
    return { idScope: m[1]!, registrationId: m[2]!, credential: chain ? { kind: 'x509', chain } : { kind: 'sas', token } };
  }

  function channel(connection: ClientConnection, key: string) {
    let map = answers.get(connection);
    if (!map) answers.set(connection, (map = new Map()));
    let ch = map.get(key);
    if (!ch) map.set(key, (ch = { early: [] }));
    return ch;
  }

  async function handle(r: Registrant, request: Message): Promise<RegistrationOperation> {
    const props = request.application_properties ?? {};
    const type = props[OPERATION_TYPE];
    if (type === REGISTER) {
      let body: { registrationId?: unknown; payload?: unknown } | undefined;
      try {
        const text = messageBody(request).toString('utf8').trim();
        body = text ? JSON.parse(text) : undefined;
      } catch {
        throw dpsErrors.badFormat('The registration request body is not JSON');
      }
      if (body !== undefined && (body === null || typeof body !== 'object')) throw dpsErrors.badFormat('The body must be {"registrationId": …}');
      if (body?.registrationId !== undefined && body.registrationId !== r.registrationId) {
        throw dpsErrors.badFormat('The body names another registration id than the link');
      }
      return registrations.register(r.idScope, r.registrationId, r.credential, body?.payload !== undefined ? { payload: body.payload } : {});
    }
    if (type === OPERATION_STATUS) {
      const operationId = props[OPERATION_ID];
      if (typeof operationId !== 'string' || !operationId) throw dpsErrors.badFormat(`${OPERATION_ID} is required`);
      return registrations.operationStatus(r.idScope, r.registrationId, operationId, r.credential);
    }
    throw dpsErrors.badFormat(`Unknown ${OPERATION_TYPE} '${String(type)}'`);
  }

  const routes: LinkRoute[] = [
    {
      // The device's receiver: answers go out here.
      role: 'send',
      address: ADDRESS,
      open({ connection, link }: IncomingLink<Sender>, m) {
        link.set_source(link.source);
        link.set_target(link.target);
        const who = registrant(connection, m);
        const key = `${who.idScope}/${who.registrationId}`;
        const ch = channel(connection, key);
        const out = new CreditQueue(link);
        ch.out = out;
        for (const early of ch.early.splice(0)) out.send(early);
        link.on('sender_close', () => {
          if (ch.out === out) ch.out = undefined;
        });
      },
    },
    {
      // The device's sender: requests come in here.
      role: 'receive',
      address: ADDRESS,
      open({ connection, link }: IncomingLink<Receiver>, m) {
        link.set_source(link.source);
        link.set_target(link.target);
        const who = registrant(connection, m);
        const ch = channel(connection, `${who.idScope}/${who.registrationId}`);
        link.on('message', (context) => {
          const request = context.message!;
          const delivery = context.delivery!;
          void handle(who, request).then(
            (op) => {
              // Accepted once the registration is recorded; the answer follows, correlated.
              delivery.accept();
              const answer: Message = {
                correlation_id: request.correlation_id ?? request.message_id,
                application_properties: {
                  [OPERATION_TYPE]: request.application_properties?.[OPERATION_TYPE],
                  ...(op.status === 'assigning' ? { 'retry-after': String(registrations.retryAfterSeconds) } : {}),
                },
                content_type: 'application/json',
                body: rhea.message.data_section(Buffer.from(JSON.stringify(op), 'utf8')),
              };
              if (ch.out) ch.out.send(answer);
              else if (ch.early.push(answer) > MAX_EARLY_ANSWERS) ch.early.shift();
            },
            (e) => delivery.reject(dpsAmqpError(e, messageId(request.correlation_id) ?? randomUUID())),
          );
        });
      },
    },
  ];
  return { routes, plainUsers, saslMechanisms: { TPM: () => new TpmSaslMechanism(registrations) } };
}
