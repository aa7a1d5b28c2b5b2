import { X509Certificate } from 'node:crypto';
import { errors, HubError } from '../../core/errors.js';
import { newEtag } from '../../core/ids.js';
import { commonName, newVerificationCode, proofOfPossessionProblem, validAt } from '../../core/proofOfPossession.js';
import type { CaCertificateStore, StoredCaCertificate } from '../../store/index.js';
import type { Authentication } from '../registry/types.js';

/** A CA certificate as `az iot hub certificate show` prints it. */
export interface CertificateDescription {
  name: string;
  etag: string;
  properties: {
    subject: string;
    expiry: string;
    thumbprint: string;
    isVerified: boolean;
    created: string;
    updated: string;
    certificate: string;
    /** Only in the answer to generateVerificationCode. */
    verificationCode?: string;
  };
}

const namePattern = /^[A-Za-z0-9._-]{1,64}$/;
/** Longest chain walked from a device certificate to a registered CA. */
const MAX_CHAIN_DEPTH = 8;

/**
 * CA certificates for X.509 CA device authentication, managed as `az iot hub certificate` does:
 * upload, get a verification code, prove possession of the CA's key by uploading a certificate it
 * signed whose subject CN is that code, then devices whose chain ends at it may connect.
 */
export class HubCertificates {
  constructor(
    private readonly store: CaCertificateStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async list(): Promise<CertificateDescription[]> {
    return (await this.store.list()).map(describe);
  }

  async get(name: string): Promise<CertificateDescription> {
    return describe(await this.require(name));
  }

  /** Creates, or replaces (with `ifMatch`, only that version); a replaced certificate must be verified again. */
  async put(name: string, certificatePem: unknown, ifMatch?: string): Promise<CertificateDescription> {
    if (!namePattern.test(name)) throw errors.argument(`Certificate name '${name}' must be 1-64 letters, digits, '.', '_' or '-'`);
    const cert = parsePem(certificatePem, 'certificate');
    if (Date.parse(cert.validTo) <= this.now().getTime()) throw errors.argument('The certificate has expired');
    const existing = await this.store.get(name);
    if (ifMatch && !existing) throw new HubError('NotFound', `Certificate ${name} not found`);
    const at = this.now().toISOString();
    const record: StoredCaCertificate = {
      name,
      etag: newEtag(),
      certificate: cert.toString(),
      isVerified: false,
      created: existing?.created ?? at,
      updated: at,
    };
    if ((await this.store.put(record, ifMatch === '*' ? undefined : ifMatch)) === 'etagMismatch') throw errors.preconditionFailed(`Certificate ${name}`);
    return describe(record);
  }

  async delete(name: string, ifMatch?: string): Promise<void> {
    const result = await this.store.delete(name, ifMatch === '*' ? undefined : ifMatch);
    if (result === 'notFound') throw new HubError('NotFound', `Certificate ${name} not found`);
    if (result === 'etagMismatch') throw errors.preconditionFailed(`Certificate ${name}`);
  }

  async generateVerificationCode(name: string, ifMatch?: string): Promise<CertificateDescription> {
    const existing = await this.require(name);
    const record: StoredCaCertificate = {
      ...existing,
      etag: newEtag(),
      verificationCode: newVerificationCode(),
      updated: this.now().toISOString(),
    };
    if ((await this.store.put(record, ifMatch === '*' || ifMatch === undefined ? existing.etag : ifMatch)) === 'etagMismatch') {
      throw errors.preconditionFailed(`Certificate ${name}`);
    }
    const described = describe(record);
    described.properties.verificationCode = record.verificationCode;
    return described;
  }

  /** Proof of possession: `proofPem` is signed by the CA and its subject CN is the verification code. */
  async verify(name: string, proofPem: unknown, ifMatch?: string): Promise<CertificateDescription> {
    const existing = await this.require(name);
    if (!existing.verificationCode) throw errors.argument(`No verification code was generated for certificate ${name}`);
    const proof = parsePem(proofPem, 'certificate');
    const problem = proofOfPossessionProblem(new X509Certificate(existing.certificate), name, proof, existing.verificationCode, this.now());
    if (problem) throw errors.argument(problem);
    const record: StoredCaCertificate = { ...existing, etag: newEtag(), isVerified: true, verificationCode: undefined, updated: this.now().toISOString() };
    if ((await this.store.put(record, ifMatch === '*' || ifMatch === undefined ? existing.etag : ifMatch)) === 'etagMismatch') {
      throw errors.preconditionFailed(`Certificate ${name}`);
    }
    return describe(record);
  }

  /**
   * Whether a TLS client certificate chain (leaf first) proves `deviceId`'s identity: for
   * `selfSigned`, the leaf's SHA-1 or SHA-256 thumbprint is one of the registered ones; for
   * `certificateAuthority`, the leaf's subject CN is the device id and it chains (through
   * intermediates the client sent) to a registered, verified CA certificate.
   */
  async provesIdentity(chainDer: Buffer[], authentication: Authentication, id: string): Promise<boolean> {
    let chain: X509Certificate[];
    try {
      chain = chainDer.map((der) => new X509Certificate(der));
    } catch {
      return false;
    }
    const leaf = chain[0];
    if (!leaf || !validAt(leaf, this.now())) return false;
    if (authentication.type === 'selfSigned') {
      const given = [authentication.x509Thumbprint.primaryThumbprint, authentication.x509Thumbprint.secondaryThumbprint]
        .filter((t): t is string => !!t)
        .map((t) => t.toUpperCase());
      const own = [leaf.fingerprint, leaf.fingerprint256].map((f) => f.replace(/:/g, '').toUpperCase());
      return own.some((f) => given.includes(f));
    }
    if (authentication.type !== 'certificateAuthority' || commonName(leaf) !== id) return false;
    const roots = (await this.store.list()).filter((c) => c.isVerified).map((c) => new X509Certificate(c.certificate));
    const intermediates = chain.slice(1).filter((c) => c.ca && validAt(c, this.now()));
    let current = leaf;
    for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth++) {
      if (roots.some((root) => current.checkIssued(root) && current.verify(root.publicKey))) return true;
      const next = intermediates.find((c) => c !== current && current.checkIssued(c) && current.verify(c.publicKey));
      if (!next) return false;
      current = next;
    }
    return false;
  }

  private async require(name: string): Promise<StoredCaCertificate> {
    const c = await this.store.get(name);
    if (!c) throw new HubError('NotFound', `Certificate ${name} not found`);
    return c;
  }
}

function parsePem(value: unknown, what: string): X509Certificate {
  if (typeof value !== 'string' || !value.includes('-----BEGIN CERTIFICATE-----')) throw errors.argument(`The ${what} must be a PEM-encoded X.509 certificate`);
  try {
    return new X509Certificate(value);
  } catch (e) {
    throw errors.argument(`The ${what} is not a valid X.509 certificate: ${(e as Error).message}`);
  }
}

function describe(c: StoredCaCertificate): CertificateDescription {
  const cert = new X509Certificate(c.certificate);
  return {
    name: c.name,
    etag: c.etag,
    properties: {
      subject: cert.subject.replace(/\n/g, ', '),
      expiry: new Date(cert.validTo).toISOString(),
      thumbprint: cert.fingerprint.replace(/:/g, ''),
      isVerified: c.isVerified,
      created: c.created,
      updated: c.updated,
      certificate: c.certificate,
    },
  };
}
