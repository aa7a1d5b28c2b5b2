import type { LogPosition } from '../../../hub/eventhub/types.js';

export type StartPosition = LogPosition | 'latest';

/**
 * Parses Event Hubs' `apache.org:selector-filter:string`, as @azure/event-hubs writes it:
 * `amqp.annotation.x-opt-offset > '-1'`, `... x-opt-sequence-number >= '42'`,
 * `... x-opt-enqueued-time > '1700000000000'`, and `x-opt-offset > '@latest'`.
 * Returns undefined for anything else (the link is then refused with amqp:invalid-field).
 */
export function parseSelector(selector: string | undefined): StartPosition | undefined {
  if (selector === undefined) return { sequenceNumber: -1 };
  const m = /^\s*amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>)\s*'([^']*)'\s*$/i.exec(selector);
  if (!m) return undefined;
  const field = m[1]!.toLowerCase();
  const inclusive = m[2] === '>=';
  const value = m[3]!;
  if (field === 'offset') {
    if (value === '@latest') return 'latest';
    if (!/^-?\d+$/.test(value)) return undefined;
    // Offset -1 is "before the first event".
    return value === '-1' ? { sequenceNumber: -1 } : { offset: value, inclusive };
  }
  if (!/^-?\d+$/.test(value)) return undefined;
  const n = Number(value);
  if (field === 'sequence-number') return { sequenceNumber: n, inclusive };
  // Strictly after: the log reads from the first event at or after the time given (ms).
  return { enqueuedTime: inclusive ? n : n + 1 };
}
