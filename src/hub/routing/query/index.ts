/**
 * INTERIM routing query (branch routing-ops): just enough of IoT Hub's route conditions for the
 * routing operations to be built and tested before the real query language (branch routing-query,
 * same path and export) lands; at merge, routing-query's file replaces this one whole.
 * Understands `true`, `false`, and `name = 'value'` on application properties (a property that is
 * absent is undefined, so neither the condition nor its `NOT` matches); anything else is refused
 * with `RouteConditionError` and its position.
 */
import { RouteConditionError, type CompileRouteCondition, type RouteCondition, type RoutableMessage } from '../types.js';

export const compileRouteCondition: CompileRouteCondition = (text: string): RouteCondition => {
  let t = text.trim();
  let negate = false;
  const not = /^NOT\s*\((.*)\)$/is.exec(t);
  if (not) {
    negate = true;
    t = not[1]!.trim();
  }
  const offset = text.indexOf(t) + 1;
  const make = (test: (m: RoutableMessage) => boolean | undefined): RouteCondition => ({
    text,
    needsTwin: false,
    needsBody: false,
    matches: (m) => {
      const v = test(m);
      return v === undefined ? false : negate ? !v : v;
    },
  });
  if (/^true$/i.test(t)) return make(() => true);
  if (/^false$/i.test(t)) return make(() => false);
  const eq = /^([A-Za-z_][\w-]*)\s*=\s*'((?:[^']|'')*)'$/.exec(t);
  if (eq) {
    const name = eq[1]!;
    const value = eq[2]!.replace(/''/g, "'");
    return make((m) => (m.properties[name] === undefined ? undefined : String(m.properties[name]) === value));
  }
  // The first character this interim grammar cannot read.
  const at = /^[A-Za-z_][\w-]*\s*=\s*/.exec(t);
  const column = offset + (at ? at[0].length : 0);
  throw new RouteConditionError(`Syntax error at '${t.slice(column - offset, column - offset + 10) || '<end>'}'.`, 1, column);
};
