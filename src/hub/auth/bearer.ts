/**
 * Azure AD bearer tokens on the hub's service APIs (REST `Authorization: Bearer …`, AMQP CBS
 * put-token of a JWT), authorized by IoT Hub's data roles at the hub's scope. The identity area
 * implements it; the hub only asks.
 */
export interface BearerVerifier {
  /**
   * Checks the token (signature, issuer, lifetime, audience `https://iothubs.azure.net`) and, when
   * `dataActions` are given, that its principal holds every one of them on this hub. Throws a
   * HubError IotHubUnauthorizedAccess (401) when it does not hold.
   */
  authorize(token: string, dataActions?: readonly string[]): Promise<{ principalId: string; expiresAt: number }>;
}

/** The token of an `Authorization: Bearer …` value, or undefined when it is not one. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const m = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
  return m ? m[1] : undefined;
}

/** Whether a string looks like a JWT (three base64url parts), as CBS put-token bodies of type `jwt` are. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}
