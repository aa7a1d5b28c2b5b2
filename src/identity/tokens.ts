import { randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, jwtVerify, type JWK } from 'jose';
import type { IdentityStore } from '../store/identity.js';
import { UnauthenticatedError, type AccessToken, type Principal, type Principals, type TokenService, type VerifiedToken } from './types.js';

export interface TokenServiceOptions {
  /** Token lifetime; Azure AD's access tokens live about an hour. */
  lifetimeSeconds?: number;
  now?: () => number;
}

type SigningKey = { privateKey: CryptoKey | Uint8Array; publicKey: CryptoKey | Uint8Array; publicJwk: JWK; kid: string };

/**
 * Fleethub's Azure AD for local use: RS256 access tokens shaped like Azure AD v1 tokens, signed
 * with a key kept in control.db (published in the JWKS, never logged).
 */
export class LocalTokenService implements TokenService {
  readonly issuer: string;
  private readonly lifetime: number;
  private readonly now: () => number;

  private constructor(
    readonly tenantId: string,
    private readonly key: SigningKey,
    private readonly principals: Principals,
    options: TokenServiceOptions,
  ) {
    this.issuer = `https://sts.windows.net/${tenantId}/`;
    this.lifetime = options.lifetimeSeconds ?? 3600;
    this.now = options.now ?? Date.now;
  }

  static async open(store: IdentityStore, tenantId: string, principals: Principals, options: TokenServiceOptions = {}): Promise<LocalTokenService> {
    const jwk = (await store.signingKey(async () => {
      const { privateKey } = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
      return { ...(await exportJWK(privateKey)), alg: 'RS256' } as Record<string, unknown>;
    })) as JWK;
    const kid = await calculateJwkThumbprint(jwk);
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = jwk;
    const privateKey = await importJWK(jwk, 'RS256');
    const publicKey = await importJWK(publicJwk, 'RS256');
    return new LocalTokenService(tenantId, { privateKey, publicKey, publicJwk: { ...publicJwk, kid, use: 'sig', alg: 'RS256' }, kid }, principals, options);
  }

  /** The JSON Web Key Set the discovery document points at. */
  jwks(): { keys: JWK[] } {
    return { keys: [{ ...this.key.publicJwk, x5t: this.key.kid }] };
  }

  async issue(principal: Principal, resource: string): Promise<AccessToken> {
    const iat = Math.floor(this.now() / 1000);
    const exp = iat + this.lifetime;
    const managed = principal.kind !== 'servicePrincipal';
    const claims: Record<string, unknown> = {
      aud: resource,
      iss: this.issuer,
      iat,
      nbf: iat,
      exp,
      appid: principal.clientId,
      // 1: authenticated with a client secret; 2: with a certificate (managed identities).
      appidacr: managed ? '2' : '1',
      idp: this.issuer,
      idtyp: 'app',
      oid: principal.principalId,
      sub: principal.principalId,
      tid: this.tenantId,
      uti: randomUUID().replace(/-/g, '').slice(0, 22),
      ver: '1.0',
      ...(managed && principal.resourceId ? { xms_mirid: principal.resourceId } : {}),
    };
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: this.key.kid, x5t: this.key.kid }).sign(this.key.privateKey);
    return { token, expiresOnTimestamp: exp * 1000 };
  }

  async verify(token: string, audiences: readonly string[]): Promise<VerifiedToken> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.key.publicKey, {
        issuer: this.issuer,
        algorithms: ['RS256'],
        currentDate: new Date(this.now()),
        clockTolerance: 300,
      }));
    } catch (e) {
      throw new UnauthenticatedError(`The access token is not valid: ${(e as Error).message}`);
    }
    const audience = typeof payload.aud === 'string' ? payload.aud : '';
    const wanted = audiences.map(trimSlash);
    if (!wanted.includes(trimSlash(audience))) throw new UnauthenticatedError(`The access token's audience '${audience}' is not accepted here`);
    const principal = typeof payload.oid === 'string' ? await this.principals.get(payload.oid) : undefined;
    if (!principal) throw new UnauthenticatedError('The principal of the access token no longer exists');
    return { principal, audience, expiresOn: new Date(Number(payload.exp) * 1000), claims: payload };
  }
}

function trimSlash(s: string): string {
  return s.toLowerCase().replace(/\/+$/, '');
}

/** The resource a scope names: `https://iothubs.azure.net/.default` → `https://iothubs.azure.net`. */
export function resourceOfScope(scope: string): string {
  return scope.replace(/\/\.default$/i, '');
}
