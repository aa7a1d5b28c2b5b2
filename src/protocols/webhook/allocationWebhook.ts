/**
 * The outbound side of custom allocation: POST the AllocationRequest to the enrollment's
 * webhook over http or https (node:http / node:https), with a time limit and a size limit on
 * the answer. TLS trusts what Node trusts (Mozilla's roots and NODE_EXTRA_CA_CERTS) plus
 * Fleethub's own CA, so a webhook served with a certificate from either works locally.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { AllocationWebhook } from '../../dps/registration/allocation.js';

export interface HttpAllocationWebhookOptions {
  /** The whole call (connect, send, answer) must finish within this many milliseconds. */
  timeoutMs?: number;
  /** PEM certificates trusted besides Node's defaults (Fleethub's CA). */
  extraCaPems?: string[];
  /** The answer is refused beyond this many bytes. */
  maxResponseBytes?: number;
}

/** Below the device SDK's 30 s request timeout: the register PUT waits for the webhook. */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

export class HttpAllocationWebhook implements AllocationWebhook {
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  /** Undefined: Node's default trust store (which already includes NODE_EXTRA_CA_CERTS). */
  private readonly ca: string[] | undefined;

  constructor(options: HttpAllocationWebhookOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    // Giving `ca` replaces Node's store, so the defaults and NODE_EXTRA_CA_CERTS are added back.
    this.ca = options.extraCaPems?.length ? [...rootCertificates, ...extraCaFromEnvironment(), ...options.extraCaPems] : undefined;
  }

  post(url: string, body: string): Promise<{ status: number; body: string }> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return Promise.reject(new Error(`invalid webhook URL`));
    }
    const https = target.protocol === 'https:';
    if (!https && target.protocol !== 'http:') return Promise.reject(new Error(`unsupported webhook URL scheme ${target.protocol}`));
    const payload = Buffer.from(body, 'utf8');
    return new Promise((resolve, reject) => {
      const options = {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'content-length': payload.length,
          accept: 'application/json',
        },
        // One connection per call: nothing pooled outlives a registration.
        agent: false as const,
        ...(https && this.ca ? { ca: this.ca } : {}),
      };
      const req = (https ? httpsRequest : httpRequest)(target, options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > this.maxResponseBytes) {
            req.destroy(new Error(`the answer exceeds ${this.maxResponseBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      req.end(payload);
    });
  }
}

/** The PEM certificates of NODE_EXTRA_CA_CERTS, when set and readable (Node reads it once at start too). */
function extraCaFromEnvironment(): string[] {
  const path = process.env.NODE_EXTRA_CA_CERTS;
  if (!path) return [];
  try {
    return readFileSync(path, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  } catch {
    return [];
  }
}
