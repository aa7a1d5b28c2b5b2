/**
 * A configuration's target condition: `*` (every device twin), a WHERE condition over device twins
 * (`tags.building = '43' AND properties.reported.x > 3`), or for module twins
 * `FROM devices.modules WHERE …`. IoT Hub also accepts an optional leading `SELECT * `.
 */
import { HubError } from '../../core/errors.js';
import type { Collection, Expr } from '../query/ast.js';
import { parseCondition } from '../query/parser.js';

export interface TargetCondition {
  collection: Extract<Collection, 'devices' | 'devices.modules'>;
  /** Undefined: every twin of the collection. */
  where?: Expr;
  /** The WHERE text (for the metrics queries IoT Hub derives from it); '' for every twin. */
  whereText: string;
}

const FROM = /^\s*(?:select\s+\*\s+)?from\s+(devices(?:\s*\.\s*modules)?)\b\s*(?:where\b([\s\S]*))?$/i;

export function parseTargetCondition(text: string): TargetCondition {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === '*') return { collection: 'devices', whereText: '' };
  const m = FROM.exec(trimmed);
  const collection = m ? (m[1]!.replace(/\s/g, '').toLowerCase() as TargetCondition['collection']) : 'devices';
  const whereText = (m ? m[2] ?? '' : trimmed).trim();
  if (whereText === '') {
    if (m && /where\s*$/i.test(trimmed)) throw new HubError('ArgumentInvalid', `Invalid target condition '${text}': WHERE needs a condition`);
    return { collection, whereText: '' };
  }
  try {
    return { collection, where: parseCondition(whereText, collection), whereText };
  } catch (e) {
    if (e instanceof HubError) throw new HubError('ArgumentInvalid', `Invalid target condition '${text}': ${e.message}`);
    throw e;
  }
}
