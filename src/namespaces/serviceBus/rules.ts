import { sbErrors } from './errors.js';
import { parseSqlFilter, type SqlValue } from './sqlFilter.js';
import type { CorrelationFilter, IncomingMessage, RuleProperties } from './types.js';

export type MessageMatcher = (message: IncomingMessage) => boolean;

/** Correlation filter fields and the system property (SQL name) each compares with. */
const correlationFields: [keyof CorrelationFilter, string][] = [
  ['correlationId', 'CorrelationId'],
  ['messageId', 'MessageId'],
  ['to', 'To'],
  ['replyTo', 'ReplyTo'],
  ['label', 'Label'],
  ['sessionId', 'SessionId'],
  ['replyToSessionId', 'ReplyToSessionId'],
  ['contentType', 'ContentType'],
];

function lookupIn(record: Record<string, unknown>, name: string): unknown {
  if (name in record) return record[name];
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(record)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function sqlValue(v: unknown): SqlValue | undefined {
  if (v === undefined) return undefined;
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v instanceof Date) return v;
  if (typeof v === 'bigint') return Number(v);
  return String(v);
}

/**
 * A rule's filter as a predicate on messages: SqlFilter (TrueFilter is '1=1', FalseFilter
 * '1=0'), or CorrelationFilter (every field given equals the message's; properties by name).
 * Rule actions are refused: Fleethub does not apply them yet.
 */
export function ruleMatcher(rule: RuleProperties): MessageMatcher {
  if (rule.action?.sqlExpression !== undefined && rule.action.sqlExpression.trim() !== '') {
    throw sbErrors.argument('Rule actions are not supported by Fleethub yet; create the rule without an action.');
  }
  if (rule.filterType === 'SqlFilter') {
    const expression = rule.sqlFilter?.sqlExpression;
    if (typeof expression !== 'string') throw sbErrors.argument("A SqlFilter rule needs 'sqlFilter.sqlExpression'.");
    const filter = parseSqlFilter(expression);
    return (m) =>
      filter.matches((scope, name) => sqlValue(scope === 'sys' ? lookupIn(m.system, name) : lookupIn(m.properties, name)));
  }
  if (rule.filterType === 'CorrelationFilter') {
    const c = rule.correlationFilter;
    if (!c || typeof c !== 'object') throw sbErrors.argument("A CorrelationFilter rule needs 'correlationFilter'.");
    const checks: MessageMatcher[] = [];
    for (const [field, sys] of correlationFields) {
      const want = c[field];
      if (want === undefined || want === null) continue;
      if (typeof want !== 'string') throw sbErrors.argument(`'correlationFilter.${field}' must be a string.`);
      checks.push((m) => m.system[sys] === want);
    }
    for (const [name, want] of Object.entries(c.properties ?? {})) {
      checks.push((m) => {
        const v = m.properties[name];
        return v instanceof Date ? v.getTime() === new Date(want as never).getTime() : v === want;
      });
    }
    if (!checks.length) throw sbErrors.argument('A CorrelationFilter needs at least one field or property.');
    return (m) => checks.every((check) => check(m));
  }
  throw sbErrors.argument(`Unknown filterType '${String((rule as { filterType?: unknown }).filterType)}': 'SqlFilter' or 'CorrelationFilter'.`);
}
