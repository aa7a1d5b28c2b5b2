/**
 * `authorizationRules[/{name}[/listKeys|/regenerateKeys]]` of a namespace or of one of its entities:
 * the same five operations in Event Hubs and Service Bus, over each service's own rules.
 */
import { ArmError } from '../errors.js';
import { bodyProperties, keysOf, keyTypeOf, lower, rightsOf, type NamespaceEndpoints } from './common.js';

type Right = 'Listen' | 'Send' | 'Manage';
interface Rule {
  name: string;
  rights: Right[];
  primaryKey: string;
  secondaryKey: string;
}

export interface RuleOwner {
  /** The ARM id of the namespace or entity the rules belong to. */
  id: string;
  /** ARM's type of its rules (`Microsoft.EventHub/Namespaces/AuthorizationRules`). */
  type: string;
  namespace: string;
  /** Set for an entity's rules: the connection strings name it. */
  entityPath?: string;
  list(): Rule[];
  put(name: string, rights: Right[]): Rule;
  delete(name: string): void;
  regenerate(name: string, which: 'PrimaryKey' | 'SecondaryKey'): Rule;
}

/** Answers the call when `rest` (the segments after `authorizationRules`) is one of its routes; undefined otherwise. */
export function authorizationRules(owner: RuleOwner, endpoints: NamespaceEndpoints, method: string, rest: string[], body: unknown): { status: number; body?: unknown } | undefined {
  const toArm = (r: Rule) => ({ id: `${owner.id}/authorizationRules/${r.name}`, name: r.name, type: owner.type, properties: { rights: r.rights } });
  const find = (name: string) => owner.list().find((r) => r.name.toLowerCase() === name.toLowerCase());
  const missing = (name: string) => notFound(owner, name);
  if (rest.length === 0) return method === 'GET' ? { status: 200, body: { value: owner.list().map(toArm) } } : undefined;
  const name = rest[0]!;
  if (rest.length === 1) {
    if (method === 'GET') {
      const r = find(name);
      if (!r) throw missing(name);
      return { status: 200, body: toArm(r) };
    }
    if (method === 'PUT') return { status: 200, body: toArm(owner.put(name, rightsOf(bodyProperties(body)))) };
    if (method === 'DELETE') {
      if (!find(name)) return { status: 204 };
      owner.delete(name);
      return { status: 200 };
    }
    return undefined;
  }
  if (rest.length === 2 && method === 'POST') {
    const action = lower(rest[1]);
    if (action === 'listkeys') {
      const r = find(name);
      if (!r) throw missing(name);
      return { status: 200, body: keysOf(owner.namespace, endpoints, r, owner.entityPath) };
    }
    if (action === 'regeneratekeys') {
      if (!find(name)) throw missing(name);
      return { status: 200, body: keysOf(owner.namespace, endpoints, owner.regenerate(name, keyTypeOf(body)), owner.entityPath) };
    }
  }
  return undefined;
}

function notFound(owner: RuleOwner, name: string) {
  return new ArmError(404, 'ResourceNotFound', `The authorization rule '${name}' of '${owner.id}' was not found.`);
}
