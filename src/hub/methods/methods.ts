import { errors, HubError } from '../../core/errors.js';
import type { DeviceStore, ModuleStore } from '../../store/index.js';

export const METHOD_LIMITS = {
  payloadBytes: 128 * 1024,
  defaultResponseTimeoutSeconds: 30,
  minResponseTimeoutSeconds: 5,
  maxResponseTimeoutSeconds: 300,
  maxConnectTimeoutSeconds: 300,
} as const;

export interface MethodRequest {
  requestId: string;
  methodName: string;
  /** The JSON payload, serialized. */
  payload: Buffer;
}

/**
 * How a protocol adapter reaches an online identity that listens for methods. `send` resolves once
 * the request is on its way; the answer comes back through `DirectMethods.respond`.
 */
export interface MethodChannel {
  send(request: MethodRequest): Promise<void>;
}

export interface MethodInvocation {
  methodName: string;
  payload?: unknown;
  responseTimeoutInSeconds?: number;
  connectTimeoutInSeconds?: number;
}

export interface MethodResult {
  status: number;
  payload: unknown;
}

interface Pending {
  identity: string;
  resolve(result: MethodResult): void;
  reject(error: HubError): void;
}

const key = (deviceId: string, moduleId?: string) => (moduleId === undefined ? deviceId : `${deviceId}/${moduleId}`);

/**
 * Direct methods: request/response with an online device or module, with IoT Hub's timeouts.
 * Nothing is stored; channels and pending requests live as long as connections and calls do.
 */
export class DirectMethods {
  private readonly channels = new Map<string, MethodChannel>();
  private readonly pending = new Map<string, Pending>();
  /** Invocations waiting (connectTimeoutInSeconds) for their identity to come online. */
  private readonly waiters = new Map<string, Set<() => void>>();
  private nextRequestId = 1;

  constructor(
    private readonly devices: DeviceStore,
    private readonly modules: ModuleStore,
  ) {}

  /** Called by a protocol adapter when the identity subscribes to methods; returns the detach. */
  attach(deviceId: string, moduleId: string | undefined, channel: MethodChannel): () => void {
    const k = key(deviceId, moduleId);
    this.channels.set(k, channel);
    for (const wake of this.waiters.get(k) ?? []) wake();
    return () => {
      // A newer connection may have replaced this channel already.
      if (this.channels.get(k) === channel) this.channels.delete(k);
    };
  }

  isOnline(deviceId: string, moduleId?: string): boolean {
    return this.channels.has(key(deviceId, moduleId));
  }

  /** A device's answer. Unknown or late request ids are ignored, as IoT Hub does. */
  respond(deviceId: string, moduleId: string | undefined, requestId: string, status: number, payload: Buffer): boolean {
    const p = this.pending.get(requestId);
    if (!p || p.identity !== key(deviceId, moduleId)) return false;
    this.pending.delete(requestId);
    p.resolve({ status, payload: parsePayload(payload) });
    return true;
  }

  async invoke(deviceId: string, moduleId: string | undefined, body: unknown): Promise<MethodResult> {
    const call = parseInvocation(body);
    if (moduleId === undefined) {
      if (!(await this.devices.get(deviceId))) throw errors.deviceNotFound(deviceId);
    } else if (!(await this.modules.get(deviceId, moduleId))) throw errors.moduleNotFound(deviceId, moduleId);

    const k = key(deviceId, moduleId);
    const channel = this.channels.get(k) ?? (await this.waitOnline(k, call.connectTimeoutInSeconds * 1000));
    if (!channel) {
      throw new HubError('DeviceNotOnline', `Timed out waiting for ${moduleId ? 'module' : 'device'} to connect.`);
    }
    const requestId = (this.nextRequestId++).toString(16);
    return new Promise<MethodResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new HubError('GatewayTimeout', `Timed out waiting for the response from ${moduleId ? 'module' : 'device'}.`));
      }, call.responseTimeoutInSeconds * 1000);
      this.pending.set(requestId, {
        identity: k,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      channel.send({ requestId, methodName: call.methodName, payload: call.payload }).catch(() => {
        // The connection went away under us: the device is not online for this call.
        if (this.pending.delete(requestId)) {
          clearTimeout(timer);
          reject(new HubError('DeviceNotOnline', 'The device disconnected before the method request could be delivered.'));
        }
      });
    });
  }

  /** Ends every call in progress (the hub is stopping), so that no request holds up shutdown. */
  close(): void {
    for (const [requestId, p] of this.pending) {
      this.pending.delete(requestId);
      p.reject(new HubError('ServiceUnavailable', 'The hub is shutting down.'));
    }
    this.channels.clear();
    for (const set of this.waiters.values()) for (const wake of [...set]) wake();
  }

  private waitOnline(k: string, ms: number): Promise<MethodChannel | undefined> {
    if (ms <= 0) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const set = this.waiters.get(k) ?? new Set();
      this.waiters.set(k, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) this.waiters.delete(k);
        resolve(this.channels.get(k));
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }
}

function parseInvocation(body: unknown): { methodName: string; payload: Buffer; responseTimeoutInSeconds: number; connectTimeoutInSeconds: number } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw errors.argument('The request body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.methodName !== 'string' || b.methodName.length === 0) throw errors.argument('methodName is required');
  if (/[/?#\s]/.test(b.methodName)) throw errors.argument(`methodName '${b.methodName}' contains characters not allowed in a method name`);
  const responseTimeoutInSeconds = seconds(b.responseTimeoutInSeconds, 'responseTimeoutInSeconds', METHOD_LIMITS.defaultResponseTimeoutSeconds, METHOD_LIMITS.minResponseTimeoutSeconds, METHOD_LIMITS.maxResponseTimeoutSeconds);
  const connectTimeoutInSeconds = seconds(b.connectTimeoutInSeconds, 'connectTimeoutInSeconds', 0, 0, METHOD_LIMITS.maxConnectTimeoutSeconds);
  const payload = Buffer.from(JSON.stringify(b.payload === undefined ? null : b.payload), 'utf8');
  if (payload.length > METHOD_LIMITS.payloadBytes) {
    throw new HubError('MessageTooLarge', `The method payload is ${payload.length} bytes; at most ${METHOD_LIMITS.payloadBytes} are allowed`);
  }
  return { methodName: b.methodName, payload, responseTimeoutInSeconds, connectTimeoutInSeconds };
}

function seconds(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw errors.argument(`${name} must be an integer between ${min} and ${max}`);
  }
  return value;
}

/** Devices answer with JSON; anything else is passed back as text rather than lost. */
function parsePayload(payload: Buffer): unknown {
  if (payload.length === 0) return null;
  const text = payload.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
