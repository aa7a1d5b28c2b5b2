import type { ServiceBusNamespaceConfig } from '../../config/index.js';
import type { ServiceBusNamespaces } from './namespaces.js';
import type { AccessRight, RuleProperties } from './types.js';

/** A rule as configured: ARM's shape ({ filterType, sqlFilter, correlationFilter }) or the short `{ sqlExpression }` / `{ correlationFilter }`. */
function ruleProperties(rule: Record<string, unknown>): RuleProperties {
  const { name: _name, sqlExpression, ...rest } = rule;
  if (typeof sqlExpression === 'string') return { filterType: 'SqlFilter', sqlFilter: { sqlExpression }, ...rest };
  if (rest.filterType === undefined && rest.correlationFilter !== undefined) return { filterType: 'CorrelationFilter', ...rest } as RuleProperties;
  return rest as unknown as RuleProperties;
}

/**
 * Creates (or updates) the configured namespaces and entities; nothing configured is deleted.
 * A subscription that lists rules gets exactly those (its `$Default` rule goes unless listed).
 */
export function applyServiceBusConfig(namespaces: ServiceBusNamespaces, config: ServiceBusNamespaceConfig[]): void {
  for (const n of config) {
    namespaces.createNamespace(n.name);
    for (const r of n.authorizationRules ?? []) namespaces.putAuthorizationRule(n.name, '', r.name, r.rights as AccessRight[]);
    for (const { name, ...properties } of n.queues ?? []) namespaces.putQueue(n.name, name, properties);
    for (const { name, subscriptions, ...properties } of n.topics ?? []) {
      namespaces.putTopic(n.name, name, properties);
      for (const { name: subName, rules, ...subProperties } of subscriptions ?? []) {
        namespaces.putSubscription(n.name, name, subName, subProperties);
        if (!rules) continue;
        for (const rule of rules) namespaces.putRule(n.name, name, subName, rule.name, ruleProperties(rule));
        for (const existing of namespaces.listRules(n.name, name, subName)) {
          if (!rules.some((r) => r.name.toLowerCase() === existing.name.toLowerCase())) namespaces.deleteRule(n.name, name, subName, existing.name);
        }
      }
    }
  }
}
