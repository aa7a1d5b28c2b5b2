import { HubError } from '../../core/errors.js';

export type TokenType = 'ident' | 'string' | 'number' | 'op' | 'eof';

export interface Token {
  type: TokenType;
  /** Identifiers as written; operators and punctuation as their text. */
  text: string;
  value?: string | number;
  /** 1-based character position in the query, as the error messages name it. */
  pos: number;
  /** A name written `[[…]]` (any characters but `]]`): never a keyword or function. */
  quoted?: boolean;
}

/** A query that does not parse: IoT Hub's 400, with the 1-based position kept for callers that report line and column. */
export class QuerySyntaxError extends HubError {
  constructor(
    readonly position: number,
    readonly detail: string,
  ) {
    super('ArgumentInvalid', `Syntax error at position ${position}: ${detail}`);
  }
}

/** IoT Hub answers a malformed query with 400 and a message naming where it went wrong. */
export function syntaxError(pos: number, message: string): QuerySyntaxError {
  return new QuerySyntaxError(pos, message);
}

/**
 * The two dialects of IoT Hub's query language: twin/job queries (`twin`), and message routing
 * conditions (`route`), whose lexer also takes double-quoted strings, `\uXXXX` escapes, hexadecimal
 * numbers (`0x1F`), `/* comments *\/`, and names with `-` inside (`$iothub-enqueuedtime`,
 * `processing-path`), as IoT Hub's routing grammar does.
 */
export type Dialect = 'twin' | 'route';

const NAME_START = /[A-Za-z_$]/;
const NAME_PART = /[A-Za-z0-9_$]/;
/** Routing names may also hold letters and digits beyond ASCII (`température`). */
const ROUTE_NAME_START = /[\p{L}_$]/u;
const ROUTE_NAME_PART = /[\p{L}\p{N}_$]/u;
const twoCharOps = ['!=', '<>', '<=', '>='];
const oneCharOps = '=<>+-*/%(),.[]';

export function tokenize(text: string, dialect: Dialect = 'twin'): Token[] {
  const route = dialect === 'route';
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const pos = i + 1;
    if (route && c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw syntaxError(pos, "unterminated comment: '/*' without '*/'");
      i = end + 2;
      continue;
    }
    if ((route ? ROUTE_NAME_START : NAME_START).test(c)) {
      const part = route ? ROUTE_NAME_PART : NAME_PART;
      let j = i + 1;
      for (;;) {
        if (j < text.length && part.test(text[j]!)) j++;
        // Routing: a '-' between name characters is part of the name (write `a - b` to subtract).
        else if (route && text[j] === '-' && part.test(text[j + 1] ?? '')) j += 2;
        else break;
      }
      tokens.push({ type: 'ident', text: text.slice(i, j), pos });
      i = j;
      continue;
    }
    if (c === '[' && text[i + 1] === '[') {
      // IoT Hub's quoted names, e.g. configurations.[[my-config]].status: ids with '-' and the like.
      const end = text.indexOf(']]', i + 2);
      if (end < 0) throw syntaxError(pos, "unterminated name: '[[' without ']]'");
      const name = text.slice(i + 2, end);
      if (name.length === 0) throw syntaxError(pos, "empty name '[[]]'");
      tokens.push({ type: 'ident', text: name, pos, quoted: true });
      i = end + 2;
      continue;
    }
    if (route && c === '0' && /[xX]/.test(text[i + 1] ?? '')) {
      const m = /^0[xX]([0-9A-Fa-f]+)/.exec(text.slice(i));
      if (!m || /[A-Za-z0-9_$]/.test(text[i + m[0].length] ?? '')) throw syntaxError(pos, `invalid hexadecimal number '${/^[0-9A-Za-z_$]*/.exec(text.slice(i))![0]}'`);
      tokens.push({ type: 'number', text: m[0], value: parseInt(m[1]!, 16), pos });
      i += m[0].length;
      continue;
    }
    if (/[0-9]/.test(c)) {
      const m = /^(\d+(\.\d+)?([eE][+-]?\d+)?)/.exec(text.slice(i))!;
      if (/[A-Za-z_$]/.test(text[i + m[0].length] ?? '')) throw syntaxError(pos, `invalid number '${text.slice(i, i + m[0].length + 1)}'`);
      tokens.push({ type: 'number', text: m[0], value: Number(m[0]), pos });
      i += m[0].length;
      continue;
    }
    if (c === "'" || (route && c === '"')) {
      // '' inside a literal is an escaped quote; \' too, as IoT Hub accepts both. Routing also
      // takes "…" and \uXXXX.
      let value = '';
      let j = i + 1;
      for (;;) {
        if (j >= text.length) throw syntaxError(pos, 'unterminated string literal');
        const d = text[j]!;
        if (route && d === '\\' && /^u[0-9A-Fa-f]{4}/.test(text.slice(j + 1, j + 6))) {
          value += String.fromCharCode(parseInt(text.slice(j + 2, j + 6), 16));
          j += 6;
        } else if (d === '\\' && j + 1 < text.length) {
          value += text[j + 1];
          j += 2;
        } else if (d === c && text[j + 1] === c) {
          value += c;
          j += 2;
        } else if (d === c) {
          j++;
          break;
        } else {
          value += d;
          j++;
        }
      }
      tokens.push({ type: 'string', text: text.slice(i, j), value, pos });
      i = j;
      continue;
    }
    if (c === '"') throw syntaxError(pos, 'string literals are written in single quotes');
    const two = text.slice(i, i + 2);
    if (twoCharOps.includes(two)) {
      tokens.push({ type: 'op', text: two === '<>' ? '!=' : two, pos });
      i += 2;
      continue;
    }
    if (oneCharOps.includes(c)) {
      tokens.push({ type: 'op', text: c, pos });
      i++;
      continue;
    }
    throw syntaxError(pos, `unexpected character '${c}'`);
  }
  tokens.push({ type: 'eof', text: '', pos: text.length + 1 });
  return tokens;
}
