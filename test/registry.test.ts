/**
 * Plugin registry: discovery of the shipped plugins, and a coded error for each way a
 * plugin module can be wrong (shape, unknown slot, duplicate id, wrong slot on resolve).
 */
import t, { type Test } from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PluginRegistry } from '../core/plugins/registry.js';
import { SLOT_NAMES } from '../core/slots/index.js';
import { tempDir } from './helpers/nats.js';

t.test('the shipped plugins load without errors, every slot has one', async (t) => {
  const { registry, errors } = await PluginRegistry.load();
  t.same(errors, []);
  const list = registry.list();
  const craft0 = list.filter((p) => p.craft === 0).map((p) => p.id).sort();
  t.same(craft0, ['craft0.full-scan', 'craft0.http', 'craft0.jsonl-store', 'craft0.memory-queue', 'craft0.polling-alerts', 'craft0.single-consumer']);
  t.ok(registry.get('queue.jetstream')?.durable);
  t.ok(registry.get('storage.lsm')?.durable);
  for (const slot of SLOT_NAMES) t.ok(list.some((p) => p.slot === slot), `a plugin fills ${slot}`);
});

const good = `export default { id: 'x.good', craft: 1, phase: 2, slot: 'query.evaluator', version: '1.0.0', summary: 'ok', create: () => ({ evaluate() {} }) };`;

function pluginDir(t: Test, files: Record<string, string>): string {
  const dir = tempDir(t);
  // The plugin modules are ES modules, as ours are (package.json "type": "module").
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

t.test('validation errors are coded and name the plugin and file', async (t) => {
  const dir = pluginDir(t, {
    'a/good.plugin.js': good,
    'a/copy.plugin.js': good,
    'b/noslot.plugin.js': good.replace("'query.evaluator'", "'query.nonsense'").replace('x.good', 'x.noslot'),
    'b/nocreate.plugin.js': good.replace(', create: () => ({ evaluate() {} })', '').replace('x.good', 'x.nocreate'),
    'b/badid.plugin.js': good.replace('x.good', 'X Bad'),
    'b/badversion.plugin.js': good.replace("'1.0.0'", "'one'").replace('x.good', 'x.badversion'),
    'b/notanobject.plugin.js': 'export default 42;',
    'b/throws.plugin.js': 'throw new Error("cannot load");',
    'b/ignored.js': good.replace('x.good', 'x.ignored'),
  });
  const { registry, errors } = await PluginRegistry.load(dir);
  t.same(registry.list().map((p) => p.id), ['x.good']);
  const byFile = (file: string) => errors.find((e) => e.message.includes(file));
  // Files load in sorted order: a/copy loads first, so a/good is the duplicate.
  t.match(byFile('a/good.plugin.js'), { code: 'CRAFT_PLUGIN_DUPLICATE', message: /x\.good is already registered/ });
  t.match(byFile('noslot.plugin.js'), { code: 'CRAFT_PLUGIN_SLOT_UNKNOWN', message: /query\.nonsense/ });
  t.match(byFile('nocreate.plugin.js'), { code: 'CRAFT_PLUGIN_SHAPE', message: /x\.nocreate: create must be a function/ });
  t.match(byFile('badid.plugin.js'), { code: 'CRAFT_PLUGIN_SHAPE', message: /id "X Bad"/ });
  t.match(byFile('badversion.plugin.js'), { code: 'CRAFT_PLUGIN_SHAPE', message: /semver/ });
  t.match(byFile('notanobject.plugin.js'), { code: 'CRAFT_PLUGIN_SHAPE', message: /not an object/ });
  t.match(byFile('throws.plugin.js'), { code: 'CRAFT_PLUGIN_SHAPE', message: /cannot load/ });
  t.equal(errors.length, 7);
});

t.test('resolve and instantiate check slot and instance shape', async (t) => {
  const registry = new PluginRegistry();
  registry.register({ id: 'q.one', craft: 4, phase: 1, slot: 'query.evaluator', version: '1.0.0', summary: 's', create: () => ({ evaluate: () => undefined }) });
  registry.register({ id: 'q.broken', craft: 4, phase: 2, slot: 'query.evaluator', version: '1.0.0', summary: 's', create: () => ({}) });
  t.throws(() => registry.resolve('storage.engine', 'q.one'), { code: 'CRAFT_PLUGIN_WRONG_SLOT' });
  t.throws(() => registry.resolve('query.evaluator', 'q.none'), { code: 'CRAFT_PLUGIN_UNKNOWN', message: /q\.one/ });
  t.throws(() => registry.instantiate('query.evaluator', 'q.broken', { log: undefined as never, clock: undefined as never }), { code: 'CRAFT_PLUGIN_SHAPE', message: /without evaluate/ });
  t.ok(registry.instantiate('query.evaluator', 'q.one', { log: undefined as never, clock: undefined as never }));
});

t.test('plugin options are checked against the plugin\'s schema before anything starts', async (t) => {
  const { registry } = await PluginRegistry.load();
  t.throws(() => registry.checkOptions('ingestion.server', 'ingestion.event-driven', { loops: 0 }), { code: 'CRAFT_PLUGIN_OPTIONS', message: /ingestion\.event-driven: loops: / });
  t.throws(() => registry.checkOptions('ingestion.server', 'ingestion.event-driven', { http: 'fast' }), { code: 'CRAFT_PLUGIN_OPTIONS', message: /http: / });
  t.throws(() => registry.checkOptions('ingestion.server', 'ingestion.event-driven', { loop: 2 }), { code: 'CRAFT_PLUGIN_OPTIONS', message: /loop/ }, 'a misspelt option is named, not ignored');
  t.same(registry.checkOptions('ingestion.server', 'ingestion.event-driven', { loops: 2 }), { loops: 2, appendsInFlight: 2, http: 'raw' }, 'defaults filled in');
  t.throws(() => registry.checkOptions('queue.log', 'queue.jetstream', { bytesMax: -1 }), { code: 'CRAFT_PLUGIN_OPTIONS', message: /bytesMax/ });
  t.throws(() => registry.checkOptions('alerting.evaluator', 'craft0.polling-alerts', { rules: [] }), { code: 'CRAFT_PLUGIN_OPTIONS', message: /rules/ });
  t.same(registry.checkOptions('query.evaluator', 'craft0.full-scan', { anything: 1 }), { anything: 1 }, 'a plugin without a schema takes what it is given');
  t.throws(() => registry.instantiate('ingestion.server', 'ingestion.event-driven', undefined as never, { loops: 'two' }), { code: 'CRAFT_PLUGIN_OPTIONS' }, 'instantiate checks too');
});

