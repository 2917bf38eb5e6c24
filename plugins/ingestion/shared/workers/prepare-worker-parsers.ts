/** The JSON parsers a phase can choose, by name (so a worker can be told which to use). */
import type { JsonParser } from '../../../../core/ingestion/protocol.js';
import { parseJsonSinglePass } from '../parsers/single-pass.js';
import { parseSeedSubstring } from '../parsers/seed-substring.js';

export type ParserName = 'seed-substring' | 'single-pass' | 'native';

export const PARSERS: Record<ParserName, JsonParser> = {
  'seed-substring': parseSeedSubstring,
  'single-pass': parseJsonSinglePass,
  native: JSON.parse,
};
