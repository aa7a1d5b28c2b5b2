import { X509Certificate } from 'node:crypto';
import { newEtag } from '../../core/ids.js';
import { newVerificationCode, proofOfPossessionProblem } from '../../core/proofOfPossession.js';
import type { DpsCertificateStore, EnrollmentGroupStore } from '../../store/dps.js';
import { dpsErrors } from '../errors.js';
import type { DpsCertificate } from '../types.js';
import { parseCertificate } from './x509.js';

/** Names as ARM allows for DPS certificates. */
const namePattern = /^[A-Za-z0-9\-._]{1,64}$/;

/** What the API returns about a CA certificate (as ARM's CertificateResponse shapes it). */
export interface CertificateResponse {
  name: string;
  etag: string;
  properties: {
    subject: string;
    expiry: string;
    thumbprint: string;
    isVerified: boolean;
    created: string;
    updated: string;
    verificationCode?: string;
  };
}

/**
 * CA certificates of the provisioning service, with proof of possession: upload, get a
 * verification code, present a certificate signed by the CA whose subject CN is that code.
 */
export class DpsCertificates {
  constructor(
    private readonly certificates: DpsCertificateStore,
    private readonly groups: EnrollmentGroupStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async list(): Promise<CertificateResponse[]> {
    return (await this.certificates.list()).map(response);
  }

  async get(name: string): Promise<CertificateResponse> {
    return response(await this.find(name));
  }

  /** Uploads (or with `ifMatch`, replaces) a CA certificate; a replaced one must be verified again. */
  async put(name: string, body: unknown, ifMatch?: string): Promise<CertificateResponse> {
    if (!namePattern.test(name)) throw dpsErrors.invalid(`Certificate name '${name}' is invalid: use up to 64 letters, digits and - . _`);
    const text = typeof body === 'object' && body !== null ? (body as { certificate?: unknown }).certificate : undefined;
    const parsed = parseCertificate(text);
    if (!parsed) throw dpsErrors.invalid('certificate is not a valid PEM or base64 X.509 certificate');
    if (!parsed.x509.ca) throw dpsErrors.invalid('The certificate is not a CA certificate (basic constraints CA:TRUE)');
    const existing = await this.certificates.get(name);
    const now = this.now().toISOString();
    const certificate: DpsCertificate = {
      name,
      etag: newEtag(),
      certificate: parsed.pem,
      subject: parsed.info.subjectName,
      thumbprint: parsed.info.sha1Thumbprint,
      sha256Thumbprint: parsed.info.sha256Thumbprint,
      expiry: parsed.info.notAfterUtc,
      isVerified: false,
      created: existing?.created ?? now,
      updated: now,
    };
    if (!existing) {
      if (!(await this.certificates.insert(certificate))) throw dpsErrors.conflict(`Certificate ${name} already exists.`);
    } else {
      if (ifMatch === undefined) throw dpsErrors.conflict(`Certificate ${name} already exists; send its etag in If-Match to replace it.`);
      this.check(await this.certificates.replace(certificate, ifMatch === '*' ? undefined : ifMatch), name);
    }
    return response(certificate);
  }

  async generateVerificationCode(name: string, ifMatch?: string): Promise<CertificateResponse> {
    const existing = await this.find(name);
    const updated: DpsCertificate = {
      ...existing,
      etag: newEtag(),
      verificationCode: newVerificationCode(),
      updated: this.now().toISOString(),
    };
    this.check(await this.certificates.replace(updated, ifMatch === undefined || ifMatch === '*' ? existing.etag : ifMatch), name);
    return response(updated);
  }

  /** Proof of possession: `body.certificate` is signed by this CA and its CN is the verification code. */
  async verify(name: string, body: unknown, ifMatch?: string): Promise<CertificateResponse> {
    const existing = await this.find(name);
    if (!existing.verificationCode) throw dpsErrors.invalid(`Generate a verification code for ${name} first`);
    const text = typeof body === 'object' && body !== null ? (body as { certificate?: unknown }).certificate : undefined;
    const proof = parseCertificate(text);
    if (!proof) throw dpsErrors.invalid('certificate is not a valid PEM or base64 X.509 certificate');
    const problem = proofOfPossessionProblem(new X509Certificate(existing.certificate), name, proof.x509, existing.verificationCode, this.now());
    if (problem) throw dpsErrors.invalid(problem);
    const verified: DpsCertificate = { ...existing, etag: newEtag(), isVerified: true, verificationCode: undefined, updated: this.now().toISOString() };
    this.check(await this.certificates.replace(verified, ifMatch === undefined || ifMatch === '*' ? existing.etag : ifMatch), name);
    return response(verified);
  }

  async delete(name: string, ifMatch?: string): Promise<void> {
    await this.find(name);
    if (await this.groups.referencesCertificate(name)) {
      throw dpsErrors.conflict(`Certificate ${name} is referenced by an enrollment group (caReferences); change or delete the group first`);
    }
    this.check(await this.certificates.delete(name, ifMatch === '*' ? undefined : ifMatch), name);
  }

  private async find(name: string): Promise<DpsCertificate> {
    const c = await this.certificates.get(name);
    if (!c) throw dpsErrors.certificateNotFound(name);
    return c;
  }

  private check(result: 'ok' | 'notFound' | 'etagMismatch', name: string): void {
    if (result === 'notFound') throw dpsErrors.certificateNotFound(name);
    if (result === 'etagMismatch') throw dpsErrors.preconditionFailed('certificate');
  }
}

function response(c: DpsCertificate): CertificateResponse {
  return {
    name: c.name,
    etag: c.etag,
    properties: {
      subject: c.subject,
      expiry: c.expiry,
      thumbprint: c.thumbprint,
      isVerified: c.isVerified,
      created: c.created,
      updated: c.updated,
      ...(c.verificationCode ? { verificationCode: c.verificationCode } : {}),
    },
  };
}
