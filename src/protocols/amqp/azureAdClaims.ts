import { HubError } from '../../core/errors.js';
import { TokenRefused, type DataPlaneTokens, type DataRight } from '../../namespaces/azureAd.js';
import type { ExpiryHolder } from './eventhub/access.js';

/** The role check of one namespace family: why `principalId` may not have `right` on `entity` of `namespace`, or undefined. */
export type RoleCheck = (principalId: string, right: DataRight, entity: string) => Promise<string | undefined>;

interface AadGrant {
  principalId: string;
  expiresAt: number;
}

interface Held {
  right: DataRight;
  entity: string;
  timer: NodeJS.Timeout;
}

const MAX_TIMER = 2 ** 31 - 1;

/**
 * The Azure AD side of one namespace connection's claims: the JWTs put on `$cbs` (by audience),
 * the role decisions made for them, and the links they authorized. Roles are looked up when a link
 * attaches and again whenever a token is put (renewal): a link whose role is gone then ends, and
 * per-message checks use the decision of the last lookup. A link ends when its token expires.
 */
export class AzureAdClaims {
  private readonly grants = new Map<string, AadGrant>();
  /** `${principal}|${right}|${entity}` → null (allowed) or the refusal. */
  private readonly decisions = new Map<string, string | null>();
  private readonly holders = new Map<ExpiryHolder, Held>();

  constructor(
    private readonly tokens: DataPlaneTokens,
    private readonly check: RoleCheck,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Verifies and records a JWT for `audience` (a refused token is `$cbs`'s 401 `InvalidToken`),
   * then re-checks what it decided before.
   */
  async put(audience: string, token: string): Promise<void> {
    let grant: AadGrant;
    try {
      grant = await this.tokens.verify(token);
    } catch (e) {
      if (e instanceof TokenRefused) throw new HubError('IotHubUnauthorizedAccess', `InvalidToken: ${e.message}`);
      throw e;
    }
    this.grants.set(audience.toLowerCase(), grant);
    for (const key of [...this.decisions.keys()]) {
      const [principalId, right, entity] = splitKey(key);
      if (!this.liveGrants().some((g) => g.principalId === principalId)) {
        this.decisions.delete(key);
        continue;
      }
      this.decisions.set(key, (await this.check(principalId, right, entity)) ?? null);
    }
    for (const [holder, held] of [...this.holders]) {
      const allowedBy = this.liveGrants().find((g) => this.decisions.get(key(g.principalId, held.right, held.entity)) === null);
      if (allowedBy) {
        this.hold(holder, held.right, held.entity, allowedBy.expiresAt);
        continue;
      }
      this.release(holder);
      holder.expire(this.refusalNow(held.right, held.entity) ?? 'ExpiredToken: The token is expired.');
    }
  }

  /** Whether any JWT was put (the connection uses Azure AD). */
  get used(): boolean {
    return this.grants.size > 0;
  }

  /**
   * Looks the roles up now: null when an unexpired token's principal has `right` on `entity`
   * (`holder` then ends when that token expires or a renewal finds the role gone); otherwise the
   * refusal; undefined when no JWT was put at all.
   */
  async authorize(right: DataRight, entity: string, holder?: ExpiryHolder): Promise<string | null | undefined> {
    if (!this.used) return undefined;
    let refusal: string | undefined;
    for (const grant of this.liveGrants()) {
      const why = await this.check(grant.principalId, right, entity);
      this.decisions.set(key(grant.principalId, right, entity), why ?? null);
      if (why === undefined) {
        if (holder) this.hold(holder, right, entity, grant.expiresAt);
        return null;
      }
      refusal ??= why;
    }
    return refusal ?? 'ExpiredToken: The token is expired.';
  }

  /** The last decision (no lookup), for each message on an authorized link: null when allowed, else why not; undefined without JWTs. */
  decided(right: DataRight, entity: string): string | null | undefined {
    if (!this.used) return undefined;
    if (this.liveGrants().some((g) => this.decisions.get(key(g.principalId, right, entity)) === null)) return null;
    return this.refusalNow(right, entity) ?? 'ExpiredToken: The token is expired.';
  }

  release(holder: ExpiryHolder): void {
    const held = this.holders.get(holder);
    if (held) clearTimeout(held.timer);
    this.holders.delete(holder);
  }

  close(): void {
    for (const held of this.holders.values()) clearTimeout(held.timer);
    this.holders.clear();
  }

  private refusalNow(right: DataRight, entity: string): string | undefined {
    for (const g of this.liveGrants()) {
      const d = this.decisions.get(key(g.principalId, right, entity));
      if (typeof d === 'string') return d;
    }
    return undefined;
  }

  private hold(holder: ExpiryHolder, right: DataRight, entity: string, expiresAt: number): void {
    const previous = this.holders.get(holder);
    if (previous) clearTimeout(previous.timer);
    const timer = setTimeout(() => {
      this.holders.delete(holder);
      holder.expire('ExpiredToken: The token that authorized this link expired.');
    }, Math.max(0, Math.min(expiresAt - this.now(), MAX_TIMER)));
    timer.unref();
    this.holders.set(holder, { right, entity, timer });
  }

  private liveGrants(): AadGrant[] {
    const now = this.now();
    return [...this.grants.values()].filter((g) => g.expiresAt > now);
  }
}

function key(principalId: string, right: DataRight, entity: string): string {
  return `${principalId}|${right}|${entity.toLowerCase()}`;
}

function splitKey(k: string): [string, DataRight, string] {
  const [principalId, right, ...entity] = k.split('|');
  return [principalId!, right as DataRight, entity.join('|')];
}
