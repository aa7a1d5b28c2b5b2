/** CA certificates registered with the hub for X.509 CA device authentication. */
export interface StoredCaCertificate {
  name: string;
  etag: string;
  /** PEM. */
  certificate: string;
  isVerified: boolean;
  /** The proof-of-possession nonce last issued, if any. */
  verificationCode?: string;
  created: string;
  updated: string;
}

export interface CaCertificateStore {
  get(name: string): Promise<StoredCaCertificate | undefined>;
  list(): Promise<StoredCaCertificate[]>;
  /** Creates or replaces; with `ifEtag`, only when the stored etag still equals it. */
  put(certificate: StoredCaCertificate, ifEtag?: string): Promise<'ok' | 'etagMismatch'>;
  delete(name: string, ifEtag?: string): Promise<'ok' | 'notFound' | 'etagMismatch'>;
}
