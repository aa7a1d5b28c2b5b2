import { HubError, errors } from '../../core/errors.js';
import { parseSasToken, resourceCovers } from '../../core/sas.js';
import type { Authorizer, Principal } from '../../hub/auth/authorizer.js';
import type { Permission } from '../../hub/auth/types.js';
import { bearerToken, looksLikeJwt } from '../../hub/auth/bearer.js';

interface Claim {
  /** The audience the token was put for (or the SASL PLAIN token's own `sr`). */
  audience: string;
  token: string;
  expiresAt: number;
  /** An Azure AD token (`Bearer …`): it names the whole hub, and each link needs its data action. */
  bearer?: boolean;
  timer?: NodeJS.Timeout;
}

/** Something a claim authorized; closed when the claim expires without renewal. */
export interface ClaimHolder {
  expire(description: string): void;
}

/**
 * The tokens one AMQP connection has presented, through SASL PLAIN or CBS put-token, and the
 * links each authorized. A link is authorized against the tokens at attach; when a token expires
 * without a put-token renewing it, the links it authorized are closed (IoT Hub's behaviour).
 */
export class ConnectionClaims {
  private readonly claims = new Map<string, Claim>();
  private readonly holders = new Map<string, Set<ClaimHolder>>();
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly authorizer: Authorizer,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Validates `token` for `audience` and records it (a later token for the same audience renews
   * it). Throws IotHubUnauthorizedAccess when the token is invalid or does not cover the audience.
   */
  put(audience: string | undefined, token: string): Promise<Principal> {
    // Links attached while a put-token is being validated wait for it (SASL PLAIN at open).
    const result = this.record(audience, token);
    this.pending.add(result);
    const done = () => this.pending.delete(result);
    result.then(done, done);
    return result;
  }

  private async record(audienceGiven: string | undefined, token: string): Promise<Principal> {
    // Azure AD tokens: azure-iothub puts `Bearer <jwt>` (as a sastoken), Event Hubs clients a bare JWT (type jwt).
    const jwt = bearerToken(token) ?? (looksLikeJwt(token) ? token : undefined);
    if (jwt !== undefined) {
      const principal = await this.authorizer.authorize(`Bearer ${jwt}`, 'ServiceConnect', '', []);
      const expiresAt = principal.kind === 'aad' ? principal.expiresAt : this.now();
      this.remember(`bearer:${audienceGiven ?? ''}`, { audience: audienceGiven ?? '', token: `Bearer ${jwt}`, expiresAt, bearer: true });
      return principal;
    }
    const sas = parseSasToken(token);
    if (!sas) throw errors.unauthorized('Malformed SharedAccessSignature');
    // azure-iot-device-amqp puts the token's `sr` as sent, URL-encoded.
    const audience = audienceGiven === undefined ? sas.resource : safeDecode(audienceGiven);
    if (!resourceCovers(sas.resource, audience) && !resourceCovers(audience, sas.resource)) {
      throw errors.unauthorized(`The token's audience '${sas.resource}' does not match '${audience}'`);
    }
    const principal = await this.validate(token, audienceHostPath(sas.resource));
    this.remember(normalize(audience), { audience, token, expiresAt: sas.expiry * 1000 });
    return principal;
  }

  private remember(key: string, claim: Claim): void {
    const previous = this.claims.get(key);
    if (previous?.timer) clearTimeout(previous.timer);
    this.claims.set(key, claim);
    const delay = claim.expiresAt - this.now();
    // setTimeout holds 32-bit delays; a token valid for longer is checked again later.
    claim.timer = setTimeout(() => this.onTimer(key, claim), Math.min(Math.max(delay, 0), 2 ** 31 - 1));
    claim.timer.unref();
  }

  /**
   * The principal some presented token grants `permission` on `resourcePath` (path under the
   * host, e.g. `/devices/d1` or `/myhub/ConsumerGroups/$default/Partitions/0`); the holder is
   * registered against that token. An Azure AD token needs `dataActions` (or the permission's
   * default ones) on the hub. Throws IotHubUnauthorizedAccess when none does.
   */
  async authorize(permission: Permission, resourcePath: string, holder?: ClaimHolder, dataActions?: readonly string[]): Promise<Principal> {
    await Promise.allSettled([...this.pending]);
    let lastError: unknown = errors.unauthorized('No token has been put on $cbs (or given through SASL) for this address');
    for (const [key, claim] of this.claims) {
      if (claim.expiresAt <= this.now()) continue;
      if (!claim.bearer) {
        const sas = parseSasToken(claim.token)!;
        const host = sas.resource.replace(/^[a-z]+:\/\//i, '').split('/')[0]!;
        if (!resourceCovers(claim.audience, host + resourcePath) && !resourceCovers(sas.resource, host + resourcePath)) continue;
      }
      try {
        const principal = await this.authorizer.authorize(claim.token, permission, resourcePath, dataActions);
        if (holder) {
          let set = this.holders.get(key);
          if (!set) this.holders.set(key, (set = new Set()));
          set.add(holder);
        }
        return principal;
      } catch (e) {
        if (!(e instanceof HubError)) throw e;
        lastError = e;
      }
    }
    throw lastError;
  }

  /** The unexpired token whose audience covers `resourcePath` (for identity checks), if any. */
  async tokenFor(resourcePath: string): Promise<string | undefined> {
    await Promise.allSettled([...this.pending]);
    for (const claim of this.claims.values()) {
      if (claim.expiresAt <= this.now() || claim.bearer) continue;
      const sas = parseSasToken(claim.token)!;
      const host = sas.resource.replace(/^[a-z]+:\/\//i, '').split('/')[0]!;
      if (resourceCovers(claim.audience, host + resourcePath) || resourceCovers(sas.resource, host + resourcePath)) return claim.token;
    }
    return undefined;
  }

  release(holder: ClaimHolder): void {
    for (const set of this.holders.values()) set.delete(holder);
  }

  close(): void {
    for (const claim of this.claims.values()) if (claim.timer) clearTimeout(claim.timer);
    this.claims.clear();
    this.holders.clear();
  }

  private async validate(token: string, resourcePath: string): Promise<Principal> {
    // A put-token only proves who the caller is; what it may do is checked per link.
    return this.authorizer.authorize(token, ['DeviceConnect', 'ServiceConnect', 'RegistryRead'], resourcePath);
  }

  private onTimer(key: string, claim: Claim): void {
    if (this.claims.get(key) !== claim) return;
    if (claim.expiresAt > this.now()) {
      claim.timer = setTimeout(() => this.onTimer(key, claim), Math.min(claim.expiresAt - this.now(), 2 ** 31 - 1));
      claim.timer.unref();
      return;
    }
    this.claims.delete(key);
    const holders = [...(this.holders.get(key) ?? [])];
    this.holders.delete(key);
    for (const h of holders) h.expire(`The SAS token for '${claim.audience}' has expired`);
  }
}

function normalize(audience: string): string {
  return audience.toLowerCase().replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
}

/** The path part (after the host) of a token's resource. */
function audienceHostPath(resource: string): string {
  const rest = resource.replace(/^[a-z]+:\/\//i, '');
  const slash = rest.indexOf('/');
  return slash < 0 ? '' : rest.slice(slash).replace(/\/+$/, '');
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
