import type { FastifyInstance, FastifyReply } from 'fastify';
import { dpsErrors } from '../../dps/errors.js';
import { TpmChallengeRequired, type DeviceRegistrations, type RegistrationOperation } from '../../dps/registration/registration.js';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import type { DeviceCredential } from '../../dps/registration/registration.js';
import { peerChain } from '../tls/peerChain.js';
import { dpsApiGroup, header } from './dpsCommon.js';

type Params = { idScope: string; registrationId: string; operationId?: string };

/** The device side of DPS over HTTPS: register, then poll the operation. */
export function dpsDeviceApi(registrations: DeviceRegistrations) {
  return dpsApiGroup((app: FastifyInstance) => {
    app.put<{ Params: Params }>('/:idScope/registrations/:registrationId/register', async (req, reply) => {
      requireDeviceApiVersion(req.query);
      const body = req.body as { registrationId?: unknown; payload?: unknown; tpm?: unknown } | undefined;
      if (body !== undefined && body !== null && (typeof body !== 'object' || (body.registrationId !== undefined && body.registrationId !== req.params.registrationId))) {
        throw dpsErrors.badFormat('The body must be {"registrationId": …} naming the registration id of the path');
      }
      const request = body && typeof body === 'object' && body.payload !== undefined ? { payload: body.payload } : {};
      const tpm = body && typeof body === 'object' ? tpmKeysOf(body.tpm) : undefined;
      const credential: DeviceCredential = tpm ? { kind: 'tpm', ...tpm, token: header(req, 'authorization') } : credentialOf(req);
      try {
        const op = await registrations.register(req.params.idScope, req.params.registrationId, credential, request);
        return send(reply, op, registrations.retryAfterSeconds);
      } catch (e) {
        if (!(e instanceof TpmChallengeRequired)) throw e;
        // DPS's TPM challenge: a 401 whose body (TpmChallenge) carries the activation blob.
        return reply
          .code(401)
          .type('application/json; charset=utf-8')
          .send({ message: 'Activate the authenticationKey in the TPM and sign a registration SAS token with it.', authenticationKey: e.authenticationKey, keyName: 'registration' });
      }
    });

    app.get<{ Params: Params }>('/:idScope/registrations/:registrationId/operations/:operationId', async (req, reply) => {
      requireDeviceApiVersion(req.query);
      const { idScope, registrationId, operationId } = req.params;
      const op = await registrations.operationStatus(idScope, registrationId, operationId!, credentialOf(req));
      return send(reply, op, registrations.retryAfterSeconds);
    });
  });
}

function requireDeviceApiVersion(query: unknown): void {
  const v = (query as Record<string, unknown>)['api-version'];
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}(-preview)?$/.test(v)) {
    throw dpsErrors.invalid('The api-version query parameter is missing or invalid (e.g. api-version=2019-03-31)');
  }
}

/** DPS answers 202 while assigning (with retry-after), 200 once the operation is finished. */
function send(reply: FastifyReply, op: RegistrationOperation, retryAfterSeconds: number): FastifyReply {
  if (op.status === 'assigning') reply.code(202).header('retry-after', String(retryAfterSeconds));
  return reply.type('application/json; charset=utf-8').send(op);
}

/** The TPM's public keys of a register body (`tpm: {endorsementKey, storageRootKey}`), if it has them. */
function tpmKeysOf(tpm: unknown): { endorsementKey: string; storageRootKey: string } | undefined {
  if (tpm === undefined || tpm === null) return undefined;
  const t = tpm as { endorsementKey?: unknown; storageRootKey?: unknown };
  if (typeof tpm !== 'object' || typeof t.endorsementKey !== 'string' || typeof t.storageRootKey !== 'string' || !t.endorsementKey || !t.storageRootKey) {
    throw dpsErrors.badFormat('tpm must be {"endorsementKey": …, "storageRootKey": …} (base64 TPM2B_PUBLIC)');
  }
  return { endorsementKey: t.endorsementKey, storageRootKey: t.storageRootKey };
}

/** A SAS token in Authorization, or else the TLS client certificate the device presented. */
function credentialOf(req: FastifyRequest): DeviceCredential {
  const token = header(req, 'authorization');
  const chain = token === undefined ? peerChain(req.raw.socket as TLSSocket)?.chain : undefined;
  return chain ? { kind: 'x509', chain } : { kind: 'sas', token };
}
