/**
 * Alertmanager's matcher text, as amtool, `craft silence`/`craft ack` and the API v2's `filter`
 * parameters write it: `name=value`, `name!=value`, `name=~regex`, `name!~regex`, the value bare
 * or in double or single quotes.
 */
import { CraftError } from '../errors.js';
import { isLabelName } from '../model.js';

export interface MatcherText {
  name: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

/** One matcher; a CRAFT_BAD_REQUEST naming the problem otherwise. */
export function parseMatcher(text: string): MatcherText {
  const match = /^\s*([^=!~\s]+)\s*(=~|!~|!=|=)\s*(.*?)\s*$/.exec(text);
  if (match === null) throw new CraftError('CRAFT_BAD_REQUEST', `not a matcher: ${JSON.stringify(text)} (use name=value, name!=value, name=~regex or name!~regex)`);
  const [, name, op, raw] = match;
  if (!isLabelName(name!)) throw new CraftError('CRAFT_BAD_REQUEST', `${JSON.stringify(name)} is not a valid label name`);
  const quoted = /^"(.*)"$/.exec(raw!) ?? /^'(.*)'$/.exec(raw!);
  return { name: name!, op: op as MatcherText['op'], value: quoted === null ? raw! : quoted[1]! };
}
