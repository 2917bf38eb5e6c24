/**
 * Generated documentation cannot drift from the code: docs/errors.md holds the table that
 * `craft errors` renders from the error registry.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errorTableMarkdown } from '../core/errors.js';

t.test('docs/errors.md lists every error code as the registry defines it', async (t) => {
  const doc = readFileSync(fileURLToPath(new URL('../../docs/errors.md', import.meta.url)), 'utf8');
  t.ok(doc.includes(errorTableMarkdown()), 'regenerate with: node bin/craft.js errors');
});
