import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { INDEX_HTML, STYLE_CSS } from './page.js';

/** What the portal's page needs to know that no credential says: where the services are (nothing secret). */
export interface PortalSettings {
  hubName: string;
  hubHostName: string;
  dpsHostName?: string;
  idScope?: string;
  tenantId: string;
  /** Where the control plane keeps the hub and the DPS (ARM resource ids are built from these). */
  subscriptionId: string;
  resourceGroup: string;
  dpsName?: string;
}

export interface PortalDeps {
  settings: () => Promise<PortalSettings>;
  /** An access token of the administrator for IoT Hub's data plane (what the one-time sign-in link gives). */
  administratorToken: () => Promise<{ hub: AccessToken; management: AccessToken }>;
}

interface AccessToken {
  token: string;
  expiresOnTimestamp: number;
}

interface Asset {
  type: string;
  raw: Buffer;
  gzip: Buffer;
  etag: string;
}

/**
 * The portal: static files (the page, its stylesheet and the compiled browser modules of
 * `src/portal/web`) under `/portal`, and the one-time sign-in link's exchange. Everything else the
 * page does goes through the public APIs with the signed-in user's credentials.
 */
export class Portal {
  private signInCode: string | undefined = randomBytes(24).toString('base64url');
  readonly assets = new Map<string, Asset>();

  constructor(private readonly deps: PortalDeps) {
    const add = (name: string, type: string, raw: Buffer) => {
      const gzip = gzipSync(raw, { level: 9 });
      this.assets.set(name, { type, raw, gzip, etag: `"${gzip.length.toString(16)}-${raw.length.toString(16)}"` });
    };
    add('', 'text/html; charset=utf-8', Buffer.from(INDEX_HTML));
    add('style.css', 'text/css; charset=utf-8', Buffer.from(STYLE_CSS));
    const web = join(dirname(fileURLToPath(import.meta.url)), 'web');
    for (const file of readdirSync(web)) {
      if (file.endsWith('.js')) add(`web/${file}`, 'text/javascript; charset=utf-8', readFileSync(join(web, file)));
    }
  }

  /** The link printed at start: signs in once as the administrator (as Jupyter's token link does). */
  signInLink(baseUrl: string): string | undefined {
    return this.signInCode ? `${baseUrl.replace(/\/+$/, '')}/portal/#signin=${this.signInCode}` : undefined;
  }

  /** The portal's whole download, compressed as served (bytes). */
  compressedSize(): number {
    return [...this.assets.values()].reduce((n, a) => n + a.gzip.length, 0);
  }

  private redeem(code: unknown): boolean {
    if (typeof code !== 'string' || !this.signInCode) return false;
    const a = Buffer.from(code);
    const b = Buffer.from(this.signInCode);
    if (a.length !== b.length || !timingSafeEqual(a, b)) return false;
    this.signInCode = undefined;
    return true;
  }

  plugin() {
    return async (app: FastifyInstance) => {
      const serve = (name: string) => async (req: FastifyRequest, reply: FastifyReply) => {
        const asset = this.assets.get(name);
        if (!asset) return reply.code(404).type('text/plain').send('Not found');
        reply
          .header('content-type', asset.type)
          .header('etag', asset.etag)
          .header('cache-control', 'no-cache')
          .header('x-content-type-options', 'nosniff')
          .header('referrer-policy', 'no-referrer')
          .header('x-frame-options', 'DENY')
          .header(
            'content-security-policy',
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
          )
          .header('vary', 'accept-encoding');
        if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send();
        if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
          return reply.header('content-encoding', 'gzip').send(asset.gzip);
        }
        return reply.send(asset.raw);
      };
      // The listener ignores trailing slashes: this is /portal and /portal/.
      app.get('/portal', serve(''));
      app.get('/portal/style.css', serve('style.css'));
      app.get<{ Params: { file: string } }>('/portal/web/:file', (req, reply) => serve(`web/${req.params.file}`)(req, reply));
      app.get('/portal/settings', async (_req, reply) => reply.header('cache-control', 'no-store').send(await this.deps.settings()));
      // The one-time sign-in link's code, exchanged once for an administrator's access token.
      app.post('/portal/signin', async (req, reply) => {
        const code = (req.body as { code?: unknown } | undefined)?.code;
        if (!this.redeem(code)) {
          return reply.code(401).header('cache-control', 'no-store').send({
            error: 'invalid_grant',
            error_description: 'The sign-in link was already used or is not valid. Sign in with the client id and secret (fleethub info --json) or a connection string.',
          });
        }
        const t = await this.deps.administratorToken();
        // Two access tokens as the token endpoint would give them: IoT Hub's data plane and ARM.
        const form = (a: AccessToken) => ({ token_type: 'Bearer', access_token: a.token, expires_on: Math.floor(a.expiresOnTimestamp / 1000) });
        return reply.header('cache-control', 'no-store').send({ hub: form(t.hub), management: form(t.management) });
      });
    };
  }
}
