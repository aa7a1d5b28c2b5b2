/**
 * The device side of DPS over MQTT, on the hub's listener: a connection whose user name is
 * `{idScope}/registrations/{registrationId}/api-version=…` is a registration, not a device.
 * Requests arrive on `$dps/registrations/PUT/iotdps-register/?$rid=…` and
 * `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=…&operationId=…`; answers go to
 * `$dps/registrations/res/{status}/?$rid=…[&retry-after=…]` — the same domain service as HTTPS.
 */
import { DpsError, dpsErrors } from '../../dps/errors.js';
import { type DeviceCredential, type DeviceRegistrations, type RegistrationOperation } from '../../dps/registration/registration.js';
import type { ClientCertificate } from './connect.js';

export interface DpsConnection {
  idScope: string;
  registrationId: string;
  /** A SAS token in the password, or else the TLS client certificate. */
  credential: DeviceCredential;
}

export interface DpsMqtt {
  /** The registration a CONNECT is for, when its user name has DPS's form. */
  parse(clientId: string, username: string | undefined, password: Buffer | undefined, certificate: ClientCertificate | undefined): DpsConnection | undefined;
  authenticate(c: DpsConnection): Promise<boolean>;
  /** A PUBLISH from the device: the answer's topic and body (undefined when the topic is not DPS's). */
  request(c: DpsConnection, topic: string, payload: Buffer): Promise<{ topic: string; body: string } | undefined>;
}

export const DPS_RESPONSE_FILTER = '$dps/registrations/res/#';

export function dpsMqtt(registrations: DeviceRegistrations): DpsMqtt {
  return {
    parse(clientId, username, password, certificate) {
      const m = /^([^/]+)\/registrations\/([^/]+)\/api-version=/.exec(username ?? '');
      if (!m || m[2] !== clientId) return undefined;
      const credential: DeviceCredential =
        password === undefined && certificate ? { kind: 'x509', chain: certificate.chain } : { kind: 'sas', token: password?.toString('utf8') };
      return { idScope: m[1]!, registrationId: m[2]!, credential };
    },
    authenticate(c) {
      return registrations.authenticate(c.idScope, c.registrationId, c.credential);
    },
    async request(c, topic, payload) {
      const m = /^\$dps\/registrations\/(PUT\/iotdps-register|GET\/iotdps-get-operationstatus)\/\?(.*)$/.exec(topic);
      if (!m) return undefined;
      const query = new URLSearchParams(m[2]);
      const rid = query.get('$rid') ?? '';
      const answer = (status: number, body: unknown, retry = false) => ({
        topic: `$dps/registrations/res/${status}/?$rid=${encodeURIComponent(rid)}${retry ? `&retry-after=${registrations.retryAfterSeconds}` : ''}`,
        body: JSON.stringify(body),
      });
      const credential = c.credential;
      try {
        let op: RegistrationOperation;
        if (m[1]!.startsWith('PUT')) {
          let body: { registrationId?: unknown; payload?: unknown } | undefined;
          try {
            const text = payload.toString('utf8').trim();
            body = text ? JSON.parse(text) : undefined;
          } catch {
            throw dpsErrors.badFormat('The registration request body is not JSON');
          }
          if (body?.registrationId !== undefined && body.registrationId !== c.registrationId) {
            throw dpsErrors.badFormat('The body names another registration id than the connection');
          }
          op = await registrations.register(c.idScope, c.registrationId, credential, body?.payload !== undefined ? { payload: body.payload } : {});
        } else {
          op = await registrations.operationStatus(c.idScope, c.registrationId, query.get('operationId') ?? '', credential);
        }
        return op.status === 'assigning' ? answer(202, op, true) : answer(200, op);
      } catch (e) {
        const err = e instanceof DpsError ? e : dpsErrors.internal();
        return answer(err.status, {
          errorCode: err.errorCode,
          trackingId: rid,
          message: err.message,
          timestampUtc: new Date().toISOString(),
        });
      }
    },
  };
}
