/**
 * INTERIM (routing-core): a stand-in for the routing query language until branch routing-query
 * lands; the lead replaces this file with routing-query's at merge. It knows `true`, `false` and
 * `name = 'value'` on application properties, and `$twin.…` paths compared to a string (enough
 * for the router's tests); anything else is a RouteConditionError.
 */
import { propertyText } from '../../../store/eventLog.js';
import { RouteConditionError, type CompileRouteCondition, type RouteCondition, type RoutableMessage, type TwinView } from '../types.js';

export const compileRouteCondition: CompileRouteCondition = (text: string): RouteCondition => {
  const t = text.trim();
  if (/^true$/i.test(t)) return { text, needsTwin: false, needsBody: false, matches: () => true };
  if (/^false$/i.test(t)) return { text, needsTwin: false, needsBody: false, matches: () => false };
  const m = /^(\$?[A-Za-z_][\w.-]*)\s*=\s*'((?:[^']|'')*)'$/.exec(t);
  if (!m) throw new RouteConditionError(`Unsupported routing query '${text}' (interim query language)`, 1, 1);
  const name = m[1]!;
  const value = m[2]!.replace(/''/g, "'");
  if (name.startsWith('$twin.')) {
    const path = name.slice('$twin.'.length).split('.');
    return {
      text,
      needsTwin: true,
      needsBody: false,
      matches: (_m: RoutableMessage, twin?: TwinView) => {
        let v: unknown = twin;
        for (const p of path) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
        return v === value;
      },
    };
  }
  if (name.startsWith('$')) throw new RouteConditionError(`Unsupported routing query '${text}' (interim query language)`, 1, 1);
  return { text, needsTwin: false, needsBody: false, matches: (msg: RoutableMessage) => propertyText(msg.properties[name]) === value };
};
