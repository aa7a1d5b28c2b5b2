/**
 * Attestation: whether a device's credential proves the registration id it claims, and which
 * enrollment (individual first, then groups) it matches. No sockets, no SQL.
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import { HubError } from '../../core/errors.js';
import { commonName, validAt } from '../../core/proofOfPossession.js';
import { parseSasToken, sign, signatureMatches } from '../../core/sas.js';
import { createTpmChallenge, isTpmPublicKey, sameEndorsementKey, verifyTpmSasToken } from '../attestation/tpm.js';
import type { DpsCertificateStore, EnrollmentGroupStore, EnrollmentStore, RegistrationStore } from '../../store/dps.js';
import { DpsError, dpsErrors } from '../errors.js';
import type { DpsInstance } from '../instance.js';
import type { EnrollmentCommon, EnrollmentGroup, IndividualEnrollment } from '../types.js';
import type { ProvisionedDevice } from './hubTarget.js';
import { TpmKeys } from './tpmKeys.js';

/**
 * How the device proved who it is: a SAS token (symmetric keys; also a TPM device's token on
 * requests that carry no TPM keys, e.g. operation polls), its TLS client certificate chain (leaf
 * first), or its TPM's public keys (base64 TPM2B_PUBLIC, as the SDK sends them) with, once it
 * has activated the challenge, the SAS token its TPM signed.
 */
export type DeviceCredential =
  | { kind: 'sas'; token: string | undefined }
  | { kind: 'x509'; chain: Buffer[] }
  | { kind: 'tpm'; endorsementKey: string; storageRootKey: string; token?: string | undefined };

/**
 * Not a refusal: the TPM's keys match the enrollment, and the device must now activate this blob
 * in its TPM and sign a SAS token with the key it installs (HTTPS: a 401 whose body carries
 * `authenticationKey`; AMQP: the SASL TPM challenge). Thrown by `attest` for a TPM credential
 * without a token, so that every entry point (register, poll, authenticate) answers alike.
 */
export class TpmChallengeRequired extends Error {
  constructor(
    /** The activation blob, base64. */
    readonly authenticationKey: string,
  ) {
    super('TPM attestation: activate the authenticationKey and sign a SAS token with it');
    this.name = 'TpmChallengeRequired';
  }
}

const MAX_CHAIN_DEPTH = 8;
/** SAS tokens whose matching group is remembered (oldest forgotten first). */
const REMEMBERED_TOKENS = 10_000;

/** The enrollment a credential matched. */
export interface Matched {
  enrollment: EnrollmentCommon;
  individual?: IndividualEnrollment;
  group?: EnrollmentGroup;
  /** The credential the hub will know the device by (for a symmetric-key group, the derived keys). */
  authentication: ProvisionedDevice['authentication'];
  /**
   * TPM attestation with the device's keys at hand: the blob installing the device's hub key in
   * its TPM, for `registrationState.tpm.authenticationKey` (never stored in the registration record).
   */
  tpm?: { authenticationKey: string };
}

/** Used when the instance carries no stored secret (tests): TPM keys then last one process. */
const processTpmSecret = randomBytes(32);

export class Attestation {
  constructor(
    private readonly instance: DpsInstance,
    private readonly enrollments: EnrollmentStore,
    private readonly groups: EnrollmentGroupStore,
    private readonly certificates: DpsCertificateStore,
    /** Registration records: the group a device last registered through is tried first. */
    private readonly registrations: RegistrationStore,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.tpmKeys = new TpmKeys(instance.tpmKeySecret ?? processTpmSecret);
  }

  private readonly tpmKeys: TpmKeys;
  /** SAS token → the group it matched (see attest). */
  private readonly tokenGroups = new Map<string, string>();

  /**
   * The enrollment the credential attests, or a 401 DpsError (DPS does not reveal whether the id
   * exists). A TPM credential without a token whose keys match throws TpmChallengeRequired.
   */
  async attest(idScope: string, registrationId: string, credential: DeviceCredential): Promise<Matched> {
    const refuse = () => dpsErrors.unauthorized();
    if (idScope !== this.instance.idScope) throw refuse();
    if (credential.kind === 'x509') return this.attestX509(registrationId, credential.chain);
    if (credential.kind === 'tpm') return this.attestTpm(idScope, registrationId, credential);
    const token = credential.token === undefined ? undefined : parseSasToken(credential.token);
    if (!token) throw refuse();
    if (token.resource.toLowerCase() !== `${idScope}/registrations/${registrationId}`.toLowerCase()) throw refuse();
    if (token.keyName !== 'registration') throw refuse();
    if (token.expiry * 1000 < this.now().getTime()) throw refuse();

    // An individual enrollment takes precedence over any group (as in DPS).
    const individual = await this.enrollments.get(registrationId);
    if (individual?.attestation.type === 'tpm') {
      // A TPM device's token without its keys (operation polls): signed with its identity key.
      const ek = individual.attestation.tpm?.endorsementKey;
      if (!ek || !isTpmPublicKey(ek)) throw refuse(); // one that does not parse was never challenged
      if (!signatureMatches(token, this.tpmKeys.identityKey(registrationId, ek).toString('base64'))) throw refuse();
      return this.tpmMatch(registrationId, individual, ek);
    }
    if (individual) {
      const keys = individual.attestation.type === 'symmetricKey' ? individual.attestation.symmetricKey : undefined;
      if (!keys) throw refuse();
      if (!signatureMatches(token, keys.primaryKey) && !signatureMatches(token, keys.secondaryKey)) throw refuse();
      return { enrollment: individual, individual, authentication: { type: 'sas', primaryKey: keys.primaryKey, secondaryKey: keys.secondaryKey } };
    }
    // Each group costs two HMACs per key (derive, then check the signature); a registration shows
    // the same token up to three times (MQTT CONNECT, PUT, poll), so the group it matched is
    // remembered for that token and tried first (before its registration record exists).
    const tokenText = credential.token!;
    for await (const group of this.groupsFor(registrationId, this.tokenGroups.get(tokenText))) {
      const keys = group.attestation.type === 'symmetricKey' ? group.attestation.symmetricKey : undefined;
      if (!keys) continue;
      const primaryKey = sign(keys.primaryKey, registrationId);
      const primaryMatches = signatureMatches(token, primaryKey);
      const secondaryKey = keys.secondaryKey === keys.primaryKey ? primaryKey : sign(keys.secondaryKey, registrationId);
      if (primaryMatches || (secondaryKey !== primaryKey && signatureMatches(token, secondaryKey))) {
        this.rememberTokenGroup(tokenText, group.enrollmentGroupId);
        return { enrollment: group, group, authentication: { type: 'sas', primaryKey, secondaryKey } };
      }
    }
    throw refuse();
  }

  /**
   * X.509: the leaf's CN is the registration id and it is valid now; an individual enrollment
   * matches by certificate, a group by a chain (through intermediates the device sent) to the
   * group's signing certificate or to a verified CA it references.
   */
  private async attestX509(registrationId: string, chainDer: Buffer[]): Promise<Matched> {
    const refuse = () => dpsErrors.unauthorized();
    let chain: X509Certificate[];
    try {
      chain = chainDer.map((der) => new X509Certificate(der));
    } catch {
      throw refuse();
    }
    const leaf = chain[0];
    const now = this.now();
    if (!leaf || !validAt(leaf, now) || commonName(leaf) !== registrationId) throw refuse();
    const thumbprint = (c: X509Certificate) => c.fingerprint256.replace(/:/g, '').toUpperCase();
    const stored = (pem: string | undefined) => {
      try {
        return pem ? new X509Certificate(pem) : undefined;
      } catch {
        return undefined;
      }
    };

    const individual = await this.enrollments.get(registrationId);
    if (individual) {
      const certs = individual.attestation.type === 'x509' ? individual.attestation.x509?.clientCertificates : undefined;
      const primary = stored(certs?.primary?.certificate);
      const secondary = stored(certs?.secondary?.certificate);
      if (![primary, secondary].some((c) => c && thumbprint(c) === thumbprint(leaf))) throw refuse();
      const sha1 = (c: X509Certificate | undefined) => (c ? c.fingerprint.replace(/:/g, '').toUpperCase() : null);
      return {
        enrollment: individual,
        individual,
        authentication: { type: 'selfSigned', primaryThumbprint: sha1(primary ?? secondary)!, secondaryThumbprint: primary && secondary ? sha1(secondary) : null },
      };
    }
    const verifiedCas = new Map((await this.certificates.list()).filter((c) => c.isVerified).map((c) => [c.name, c.certificate]));
    const intermediates = chain.slice(1).filter((c) => c.ca && validAt(c, now));
    for await (const group of this.groupsFor(registrationId)) {
      const x509 = group.attestation.type === 'x509' ? group.attestation.x509 : undefined;
      if (!x509) continue;
      const anchors = [
        x509.signingCertificates?.primary?.certificate,
        x509.signingCertificates?.secondary?.certificate,
        ...[x509.caReferences?.primary, x509.caReferences?.secondary].map((name) => (name ? verifiedCas.get(name) : undefined)),
      ]
        .map(stored)
        .filter((c): c is X509Certificate => !!c && validAt(c, now));
      if (anchors.length && chainsTo(leaf, intermediates, anchors)) {
        // DPS creates the device self-signed with its leaf's thumbprint (it has checked the chain;
        // the hub need not know the CA), and updates it when the device re-registers with another leaf.
        const sha1 = leaf.fingerprint.replace(/:/g, '').toUpperCase();
        return { enrollment: group, group, authentication: { type: 'selfSigned', primaryThumbprint: sha1, secondaryThumbprint: null } };
      }
    }
    throw refuse();
  }

  /**
   * The TPM challenge for a device presenting these keys. When an individual enrollment (DPS has
   * TPM for individual enrollments only) of this registration id holds the same endorsement key
   * (compared as keys, not as text), the blob installs the identity key the SAS is checked
   * against. Otherwise (unknown id, another TPM's EK, other attestation type, wrong id scope) it is
   * a decoy: a blob of the same shape for the presented EK and SRK, installing a key derived with
   * another label that no SAS check accepts, so the refusal comes at the next step (the signed
   * SAS), "401 alike" as for symmetric keys: the answer does not reveal whether the id exists.
   * Keys DPS cannot use (not TPM storage keys) are a 400 either way. AMQP's SASL TPM exchange
   * calls this directly; the blob goes back to the device, the key is derived again later.
   */
  async tpmChallenge(idScope: string, registrationId: string, endorsementKey: string, storageRootKey: string): Promise<TpmChallengeRequired> {
    const enrolled = idScope === this.instance.idScope ? await this.tpmEnrollment(registrationId, endorsementKey).catch(noMatch) : undefined;
    // The decoy key is derived from the presented EK: one that does not parse is bad input.
    if (!enrolled && !isTpmPublicKey(endorsementKey)) throw dpsErrors.invalid('The endorsement key is not a TPM 2.0 TPM2B_PUBLIC.');
    const identityKey = enrolled
      ? this.tpmKeys.identityKey(registrationId, enrolled.enrolledEk)
      : this.tpmKeys.decoyKey(registrationId, endorsementKey);
    const { authenticationKey } = this.tpmBlob(endorsementKey, storageRootKey, registrationId, identityKey);
    return new TpmChallengeRequired(authenticationKey);
  }

  private async attestTpm(idScope: string, registrationId: string, credential: DeviceCredential & { kind: 'tpm' }): Promise<Matched> {
    const { endorsementKey, storageRootKey, token } = credential;
    if (token === undefined) throw await this.tpmChallenge(idScope, registrationId, endorsementKey, storageRootKey);
    // No enrollment holds this EK (the challenge was a decoy): refused whatever the token.
    const { individual, enrolledEk } = await this.tpmEnrollment(registrationId, endorsementKey);
    try {
      verifyTpmSasToken(token, this.tpmKeys.identityKey(registrationId, enrolledEk), idScope, registrationId, Math.floor(this.now().getTime() / 1000));
    } catch (e) {
      if (e instanceof HubError) throw dpsErrors.unauthorized();
      throw e;
    }
    const matched = this.tpmMatch(registrationId, individual, enrolledEk);
    const hubKey = Buffer.from((matched.authentication as { primaryKey: string }).primaryKey, 'base64');
    return { ...matched, tpm: { authenticationKey: this.tpmBlob(endorsementKey, storageRootKey, registrationId, hubKey).authenticationKey } };
  }

  private async tpmEnrollment(registrationId: string, endorsementKey: string): Promise<{ individual: IndividualEnrollment; enrolledEk: string }> {
    const individual = await this.enrollments.get(registrationId);
    const enrolledEk = individual?.attestation.type === 'tpm' ? individual.attestation.tpm?.endorsementKey : undefined;
    if (!individual || !enrolledEk || !sameEndorsementKey(enrolledEk, endorsementKey)) throw dpsErrors.unauthorized();
    return { individual, enrolledEk };
  }

  private tpmMatch(registrationId: string, individual: IndividualEnrollment, enrolledEk: string): Matched {
    return { enrollment: individual, individual, authentication: { type: 'sas', ...this.tpmKeys.deviceKeys(registrationId, enrolledEk) } };
  }

  /** A blob for the device's TPM; keys DPS cannot use (not storage keys, bad base64) are a 400. */
  private tpmBlob(endorsementKey: string, storageRootKey: string, registrationId: string, identityKey: Buffer) {
    try {
      return createTpmChallenge(endorsementKey, storageRootKey, registrationId, { identityKey });
    } catch (e) {
      if (e instanceof HubError) throw dpsErrors.invalid(e.message);
      throw e;
    }
  }

  /**
   * The groups to try, in a deterministic order: the group this registration id last registered
   * through (its durable registration record), when it still exists, then every other group by
   * id. When several groups accept one device, the order decides which wins; it depends only on
   * stored state, so it is the same in every process and after a restart.
   */
  private async *groupsFor(registrationId: string, matchedBefore?: string): AsyncGenerator<EnrollmentGroup> {
    const previous = (await this.registrations.get(registrationId))?.enrollmentGroupId;
    const tried = new Set<string>();
    // `matchedBefore`: the group this same token matched moments ago by this very order, so
    // trying it next changes no outcome, it only skips the scan that found it.
    for (const id of [previous, matchedBefore]) {
      if (id === undefined || tried.has(id)) continue;
      tried.add(id);
      const group = await this.groups.get(id);
      if (group) yield group;
    }
    for await (const group of this.allGroups()) if (!tried.has(group.enrollmentGroupId)) yield group;
  }

  private rememberTokenGroup(token: string, groupId: string): void {
    this.tokenGroups.delete(token);
    this.tokenGroups.set(token, groupId);
    if (this.tokenGroups.size > REMEMBERED_TOKENS) this.tokenGroups.delete(this.tokenGroups.keys().next().value!);
  }

  private async *allGroups(): AsyncGenerator<EnrollmentGroup> {
    let after: string | undefined;
    for (;;) {
      const page = await this.groups.list(100, after);
      yield* page.items;
      if (!page.continuation) return;
      after = page.continuation;
    }
  }
}

/** A refusal of `tpmEnrollment` (no enrollment holds that EK) as undefined; other failures stay failures. */
function noMatch(e: unknown): undefined {
  if (e instanceof DpsError && e.status === 401) return undefined;
  throw e;
}

/** Whether `leaf` chains to one of `anchors` (an anchor may be a root or an intermediate) through `intermediates`. */
function chainsTo(leaf: X509Certificate, intermediates: X509Certificate[], anchors: X509Certificate[]): boolean {
  let current = leaf;
  for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth++) {
    if (anchors.some((a) => current.checkIssued(a) && current.verify(a.publicKey))) return true;
    const next = intermediates.find((c) => c !== current && current.checkIssued(c) && current.verify(c.publicKey));
    if (!next) return false;
    current = next;
  }
  return false;
}
