/**
 * Configuration and scenario files: errors name the file, the line and the key.
 */
import t from 'tap';
import { parseYaml } from '../core/config/yaml-file.js';
import { actorsHere, configSchema, makeConfig, pluginFor } from '../core/config/schema.js';
import { scenarioSchema } from '../cli/scenario/schema.js';
import { resolveConfig } from '../cli/config.js';

const problems = (fn: () => unknown): { line: number; path: string; message: string }[] => {
  try {
    fn();
  } catch (error) {
    return ((error as { details?: { problems?: { line: number; path: string; message: string }[] } }).details?.problems ?? []);
  }
  throw new Error('expected an error');
};

t.test('an empty file is a valid configuration with defaults', async (t) => {
  const config = parseYaml('', 'craft.yaml', configSchema, 'CRAFT_CONFIG_INVALID');
  t.equal(config.http.ingestionPort, 8080);
  t.equal(config.queue.partitions, 4);
  t.equal(pluginFor(config, 'storage.engine').id, 'storage.gorilla');
  t.same(config.actors, ['control', 'queue', 'storage', 'query', 'notifier', 'alerting', 'ingestion']);
});

t.test('a wrong value points at its line and key', async (t) => {
  const text = ['dataDir: ./d', 'http:', '  host: 127.0.0.1', '  ingestionPort: eighty', 'queue:', '  partitions: 0', ''].join('\n');
  const found = problems(() => parseYaml(text, 'craft.yaml', configSchema, 'CRAFT_CONFIG_INVALID'));
  t.match(found, [
    { line: 4, path: 'http.ingestionPort' },
    { line: 6, path: 'queue.partitions' },
  ]);
  t.throws(() => parseYaml(text, 'craft.yaml', configSchema, 'CRAFT_CONFIG_INVALID'), { code: 'CRAFT_CONFIG_INVALID', message: /craft\.yaml:4:\d+: http\.ingestionPort/ });
});

t.test('an unknown key is named with its line', async (t) => {
  const found = problems(() => parseYaml('http:\n  ingestionPrt: 9000\n', 'c.yaml', configSchema, 'CRAFT_CONFIG_INVALID'));
  t.match(found, [{ line: 2, path: 'http.ingestionPrt', message: /ingestionPrt/ }]);
});

t.test('YAML syntax errors carry their line', async (t) => {
  const found = problems(() => parseYaml('http:\n  host: [unclosed\n', 'c.yaml', configSchema, 'CRAFT_CONFIG_INVALID'));
  t.ok(found.length > 0);
  t.ok(found[0]!.line >= 2);
});

t.test('scenario: a step error points into the timeline', async (t) => {
  const text = [
    'name: demo',
    'steps:',
    '  - load: { id: a, duration: 1s }',
    '  - swap:',
    '      slot: storage.engine',
    '      plugn: x',
    '  - expect:',
    '      - successRate: { load: nope, min: 0.5 }',
    '',
  ].join('\n');
  const found = problems(() => parseYaml(text, 's.yaml', scenarioSchema, 'CRAFT_SCENARIO_INVALID'));
  t.ok(found.some((p) => p.line === 4 || p.line === 5 || p.line === 6), JSON.stringify(found));
});

t.test('scenario: a reference to a load that does not exist is reported at its line', async (t) => {
  const text = ['name: demo', 'steps:', '  - load: { id: a, duration: 1s }', '  - expect:', '      - successRate: { load: nope, min: 0.5 }', ''].join('\n');
  const found = problems(() => parseYaml(text, 's.yaml', scenarioSchema, 'CRAFT_SCENARIO_INVALID'));
  t.match(found, [{ line: 5, message: /no load step with id "nope"/ }]);
});

t.test('scenario durations accept units', async (t) => {
  const scenario = parseYaml('name: d\nsteps:\n  - wait: 1.5s\n  - wait: 250ms\n  - wait: 2m\n', 's.yaml', scenarioSchema, 'CRAFT_SCENARIO_INVALID');
  t.same(scenario.steps.map((s) => ('wait' in s ? s.wait : null)), [1_500, 250, 120_000]);
});

t.test('flags override the file; --only is checked', async (t) => {
  const config = resolveConfig({ only: 'storage,query', ingestionPort: '9000', nats: 'nats://x:1' });
  t.same(config.actors, ['storage', 'query']);
  t.equal(config.http.ingestionPort, 9000);
  t.equal(config.nats.url, 'nats://x:1');
  t.throws(() => resolveConfig({ only: 'storage,bogus' }), { code: 'CRAFT_CONFIG_INVALID', message: /bogus/ });
  t.throws(() => resolveConfig({ ingestionPort: '99999' }), { code: 'CRAFT_CONFIG_INVALID' });
  t.equal(makeConfig({ plugins: { 'query.evaluator': { id: 'q', options: { a: 1 } } } }).plugins['query.evaluator'] !== undefined, true);
});

t.test('an actor under processes runs only in its child process', async (t) => {
  // The README's example: the default actors plus a storage process must not start storage twice.
  const config = parseYaml('processes: [ { name: store-node, actors: [storage] } ]\n', 'craft.yaml', configSchema, 'CRAFT_CONFIG_INVALID');
  t.same(actorsHere(config), ['control', 'queue', 'query', 'notifier', 'alerting', 'ingestion']);
  const split = makeConfig({ actors: ['control', 'queue', 'ingestion'], processes: [{ name: 'q', actors: ['queue'] }] });
  t.same(actorsHere(split), ['control', 'ingestion']);
  t.same(actorsHere(makeConfig({})), ['control', 'queue', 'storage', 'query', 'notifier', 'alerting', 'ingestion']);
});
