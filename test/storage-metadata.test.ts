/**
 * Metric metadata per client (actors/storage-metadata.ts): a tenant sees the type it sent, a
 * listing for everybody every distinct type; saved and read back; the older file format (one
 * type per name) still read, as types every client sent.
 */
import t from 'tap';
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MetricMetadata } from '../actors/storage-metadata.js';
import { ManualClock } from '../core/clock.js';
import { METRIC_TYPES, type MetricType } from '../core/model.js';
import { tempDir } from './helpers/nats.js';

t.test('property: what each client sees is the last type it sent; everybody sees every distinct type; a reload keeps both', async (t) => {
  const dir = tempDir(t);
  let run = 0;
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('acme', 'globex', 'ops'), fc.constantFrom('cpu', 'mem', 'disk'), fc.constantFrom(...METRIC_TYPES)), { maxLength: 30 }), (notes) => {
      const file = join(dir, `m${run++}.json`);
      const metadata = new MetricMetadata(file, new ManualClock(0));
      const model = new Map<string, Map<string, MetricType>>();
      for (const [client, name, type] of notes) {
        metadata.note(client, { [name]: type });
        if (!model.has(name)) model.set(name, new Map());
        model.get(name)!.set(client, type);
      }
      metadata.save();
      const reloaded = new MetricMetadata(file, new ManualClock(0));
      const names = ['cpu', 'disk', 'mem', 'never'];
      for (const m of [metadata, reloaded]) {
        for (const client of ['acme', 'globex', 'ops']) {
          const seen = m.list(names, undefined, undefined, client);
          for (const name of names) {
            const expected = model.get(name)?.get(client) ?? 'gauge';
            if (seen[name]?.length !== 1 || seen[name]![0]!.type !== expected) throw new Error(`${client} ${name}: ${JSON.stringify(seen[name])}, expected ${expected}`);
          }
        }
        const all = m.list(names);
        for (const name of names) {
          const expected = model.has(name) ? [...new Set(model.get(name)!.values())].sort() : ['gauge'];
          if (JSON.stringify(all[name]!.map((e) => e.type)) !== JSON.stringify(expected)) throw new Error(`everybody ${name}: ${JSON.stringify(all[name])}, expected ${expected}`);
        }
      }
    }),
    { numRuns: 200 },
  );
  t.pass('per-client types equal the model');
});

t.test('a file of the older format is read as types every client sent; a client’s own type then wins', async (t) => {
  const file = join(tempDir(t), 'metadata.json');
  writeFileSync(file, JSON.stringify({ requests_total: 'counter', temperature: 'gauge', bogus: 'nonsense' }));
  const metadata = new MetricMetadata(file, new ManualClock(0));
  t.same(metadata.list(['requests_total', 'bogus'], undefined, undefined, 'acme'), { requests_total: [{ type: 'counter', help: '', unit: '' }], bogus: [{ type: 'gauge', help: '', unit: '' }] });
  metadata.note('acme', { temperature: 'summary' });
  t.same(metadata.list(['temperature'], undefined, undefined, 'acme').temperature, [{ type: 'summary', help: '', unit: '' }]);
  t.same(metadata.list(['temperature'], undefined, undefined, 'globex').temperature, [{ type: 'gauge', help: '', unit: '' }]);
  t.same(metadata.list(['temperature']).temperature!.map((e) => e.type), ['gauge', 'summary']);
  metadata.save();
  t.match(JSON.parse(readFileSync(file, 'utf8')), { byClient: { temperature: { '': 'gauge', acme: 'summary' } } }, 'saved in the per-client format');
  t.same(metadata.list(['temperature', 'requests_total'], 'requests_total', 5), { requests_total: [{ type: 'counter', help: '', unit: '' }] }, 'one metric asked for');
  t.same(Object.keys(metadata.list(['temperature', 'requests_total'], undefined, 1)), ['temperature'], 'at most `limit` names');
});
