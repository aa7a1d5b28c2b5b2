/** The IoT Hub query language as a tree: what the parser produces and the store compiles. */

export type Collection = 'devices' | 'devices.modules' | 'devices.jobs';

export type Literal = string | number | boolean | null;

export type ComparisonOp = '=' | '!=' | '<' | '>' | '<=' | '>=';
export type ArithmeticOp = '+' | '-' | '*' | '/' | '%';

export type Expr =
  | { kind: 'literal'; value: Literal; pos: number }
  | { kind: 'array'; items: Expr[]; pos: number }
  /** A property path, already relative to the queried document (collection prefixes removed). */
  | { kind: 'path'; segments: string[]; pos: number }
  | { kind: 'not'; operand: Expr; pos: number }
  | { kind: 'negate'; operand: Expr; pos: number }
  | { kind: 'compare'; op: ComparisonOp; left: Expr; right: Expr; pos: number }
  | { kind: 'logical'; op: 'AND' | 'OR'; left: Expr; right: Expr; pos: number }
  | { kind: 'arithmetic'; op: ArithmeticOp; left: Expr; right: Expr; pos: number }
  | { kind: 'in'; negated: boolean; operand: Expr; list: Expr[]; pos: number }
  /** Scalar functions (IS_DEFINED, STARTSWITH, …); `name` is upper-case. */
  | { kind: 'call'; name: string; args: Expr[]; pos: number }
  /** Aggregates (COUNT, SUM, AVG, MIN, MAX): only in a SELECT list. */
  | { kind: 'aggregate'; name: 'COUNT' | 'SUM' | 'AVG' | 'MIN' | 'MAX'; arg?: Expr; pos: number };

export interface SelectItem {
  expr: Expr;
  /** The property name the value appears under in each result. */
  name: string;
}

export interface Query {
  /** '*' returns whole documents (twins, device jobs); otherwise one JSON object per row or group. */
  select: '*' | SelectItem[];
  top?: number;
  from: Collection;
  where?: Expr;
  groupBy?: Expr[];
}

export const AGGREGATES = ['COUNT', 'SUM', 'AVG', 'MIN', 'MAX'] as const;

/** Scalar functions with their arity. */
export const FUNCTIONS: Record<string, number> = {
  IS_DEFINED: 1,
  IS_NULL: 1,
  IS_STRING: 1,
  IS_NUMBER: 1,
  IS_BOOL: 1,
  IS_OBJECT: 1,
  IS_ARRAY: 1,
  IS_PRIMITIVE: 1,
  STARTSWITH: 2,
  ENDSWITH: 2,
  CONTAINS: 2,
  LOWER: 1,
  UPPER: 1,
  LENGTH: 1,
  ABS: 1,
  FLOOR: 1,
  CEILING: 1,
};

/**
 * The functions of message routing conditions, with their least and greatest number of arguments
 * (IoT Hub's "Expressions and conditions": math, type checking and casting, strings).
 */
export const ROUTE_FUNCTIONS: Record<string, readonly [number, number]> = {
  ABS: [1, 1],
  EXP: [1, 1],
  POWER: [2, 2],
  SQUARE: [1, 1],
  CEILING: [1, 1],
  FLOOR: [1, 1],
  SIGN: [1, 1],
  SQRT: [1, 1],
  AS_NUMBER: [1, 1],
  IS_ARRAY: [1, 1],
  IS_BOOL: [1, 1],
  IS_DEFINED: [1, 1],
  IS_NULL: [1, 1],
  IS_NUMBER: [1, 1],
  IS_OBJECT: [1, 1],
  IS_PRIMITIVE: [1, 1],
  IS_STRING: [1, 1],
  CONCAT: [2, Infinity],
  LENGTH: [1, 1],
  LOWER: [1, 1],
  UPPER: [1, 1],
  SUBSTRING: [2, 3],
  INDEX_OF: [2, 2],
  STARTS_WITH: [2, 2],
  ENDS_WITH: [2, 2],
  CONTAINS: [2, 2],
};

/** Structural equality, ignoring positions (GROUP BY keys versus SELECT items). */
export function sameExpr(a: Expr, b: Expr): boolean {
  return JSON.stringify(a, (k, v) => (k === 'pos' ? undefined : v)) === JSON.stringify(b, (k, v) => (k === 'pos' ? undefined : v));
}
