import { randomBytes, type X509Certificate } from 'node:crypto';

/**
 * Proof of possession of a CA's private key, as IoT Hub and DPS both verify it: the owner gets a
 * verification code, then presents a certificate the CA signed whose subject CN is that code.
 * Shared by the hub's and the provisioning service's CA certificate lifecycles.
 */
export function newVerificationCode(): string {
  return randomBytes(24).toString('hex').toUpperCase();
}

export function commonName(cert: X509Certificate): string | undefined {
  return /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
}

export function validAt(cert: X509Certificate, now: Date): boolean {
  const t = now.getTime();
  return Date.parse(cert.validFrom) <= t && t <= Date.parse(cert.validTo);
}

/** Why `proof` does not prove possession of `ca`'s key for `code`, or undefined when it does. */
export function proofOfPossessionProblem(ca: X509Certificate, caName: string, proof: X509Certificate, code: string, now: Date): string | undefined {
  if (!proof.checkIssued(ca) || !proof.verify(ca.publicKey)) return `The verification certificate was not signed by certificate ${caName}`;
  if (commonName(proof) !== code) return 'The verification certificate subject CN is not the verification code';
  if (!validAt(proof, now)) return 'The verification certificate is not valid now';
  return undefined;
}
