/**
 * The alert-rule DSL (grammars/rules.peggy, core/rules/dsl.ts): what it reads, the errors it
 * gives (with line and column), that it means the same as the Prometheus YAML it stands for,
 * and that printing and reading back is the identity. Templates and anomaly functions too.
 */
import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { formatRulesDsl, parseRulesDsl } from '../core/rules/dsl.js';
import { parseRuleFile, type RuleGroup } from '../core/rules/rule-file.js';
import { expandTemplate, parseTemplate } from '../core/rules/template.js';
import { desugarAnomaly } from '../core/rules/anomaly.js';
import { parsePromQL } from '../core/promql/parser.js';

const EXAMPLE = `# node alerts
group node interval 30s {
  alert HighCPU
    when avg by (host) (rate(cpu_seconds_total[5m])) > 0.9
    for 5m
    keep_firing_for 2m
    labels { severity = "page" }
    annotations {
      summary = "CPU high on {{ $labels.host }}: {{ $value }}",
      runbook = 'https://runbooks/cpu'
    }

  record host:cpu:rate5m
    as sum by (host) (
         rate(cpu_seconds_total[5m])
       )
}

alert TargetDown when up == 0
  for 1m
`;

t.test('groups, rules and clauses', async (t) => {
  const groups = parseRulesDsl(EXAMPLE, 'dir/hosts.rules');
  t.equal(groups.length, 2, 'the loose rule forms a group named after the file, listed first');
  const [loose, node] = groups;
  t.equal(loose!.name, 'hosts');
  t.same(loose!.rules, [{ alert: 'TargetDown', expr: 'up == 0', for: 60_000 }]);
  t.equal(node!.interval, 30_000);
  t.same(node!.rules[0], {
    alert: 'HighCPU',
    expr: 'avg by (host) (rate(cpu_seconds_total[5m])) > 0.9',
    for: 300_000,
    keep_firing_for: 120_000,
    labels: { severity: 'page' },
    annotations: { summary: 'CPU high on {{ $labels.host }}: {{ $value }}', runbook: 'https://runbooks/cpu' },
  });
  const record = node!.rules[1] as { record: string; expr: string };
  t.equal(record.record, 'host:cpu:rate5m');
  t.match(record.expr, /^sum by \(host\) \(\n\s+rate\(cpu_seconds_total\[5m\]\)\n\s+\)$/, 'an expression continues over lines until a keyword');
});

t.test('the DSL means what the Prometheus YAML it stands for means', async (t) => {
  const yaml = parseRuleFile(
    [
      'groups:',
      '  - name: node',
      '    interval: 30s',
      '    rules:',
      '      - alert: HighCPU',
      '        expr: avg by (host) (rate(cpu_seconds_total[5m])) > 0.9',
      '        for: 5m',
      '        keep_firing_for: 2m',
      '        labels: { severity: page }',
      '        annotations:',
      '          summary: "CPU high on {{ $labels.host }}: {{ $value }}"',
      '          runbook: https://runbooks/cpu',
    ].join('\n'),
    'node.yaml',
  );
  const dsl = parseRulesDsl(EXAMPLE, 'hosts.rules').find((g) => g.interval !== undefined)!;
  t.same({ ...dsl, file: 'x', rules: dsl.rules.slice(0, 1) }, { ...yaml[0]!, file: 'x' });
});

t.test('a loose group named like a group of the file is refused', async (t) => {
  t.throws(() => parseRulesDsl('alert A when x > 1\ngroup f { alert B when y > 1\n}', 'f.rules'), { code: 'CRAFT_CONFIG_INVALID', message: /f\.rules:1:1: .*"f"/ });
});

t.test('errors carry the file, line and column', async (t) => {
  const cases: [string, RegExp][] = [
    ['alert A\n  for 5m\n', /r\.rules:1:1: alert A has no "when <expression>"/],
    ['alert A\n  when x > 1\n  for 5m\n  for 6m\n', /r\.rules:4:3: for is given twice/],
    ['alert A\n  when sum(rate(x[5m])\n', /r\.rules:2:23: invalid PromQL: unexpected end of input/],
    ['alert A\n  when x >\n', /r\.rules:2:\d+: invalid PromQL/],
    ['alert A\n  when x > 1\n  for soon\n', /r\.rules:3:\d+: /],
    ['alert A\n  when x > 1\n  for 5x\n', /r\.rules:3:7: not a duration: "5x"/],
    ['alert A\n  when x > 1\n  labels { 1bad = "v" }\n', /r\.rules:3:\d+: /],
    ['alert A\n  when x > 1\n  annotations { s = "{{ $nope }}" }\n', /r\.rules:3:17: template of s: unknown value "\$nope"/],
    ['alert A\n  when x > 1\n  annotations { s = "{{ $value | frobnicate }}" }\n', /r\.rules:3:17: template of s: unknown function "frobnicate"/],
    ['alert A\n  when x > 1\n  labels { a = "1", a = "2" }\n', /r\.rules:3:21: a is given twice/],
    ['group g {\n  alert A when x > 1\n', /r\.rules:3:1: .*closing brace/],
    ['group g {}\ngroup g {}\n', /r\.rules:2:1: group name "g" is used twice/],
    ['alert A\n  when x > 1\n  annotations { s = "bad \\q escape" }\n', /r\.rules:3:\d+: unknown escape \\q/],
    ['record job:x\n  labels { a = "b" }\n', /r\.rules:1:1: record job:x has no "as <expression>"/],
    ['alert A\n  when zscore(x, soon) > 3\n', /r\.rules:2:8: zscore: the window must be a duration/],
    ['frobnicate\n', /r\.rules:1:1: /],
  ];
  for (const [text, message] of cases) t.throws(() => parseRulesDsl(text, 'r.rules'), { code: 'CRAFT_CONFIG_INVALID', message }, JSON.stringify(text));
});

// Rule groups the DSL can express, generated.
const nameArb = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,8}$/).filter((n) => !['when', 'as', 'for', 'keep_firing_for', 'labels', 'annotations', 'alert', 'record', 'group', 'interval'].includes(n));
const valueArb = fc.string({ maxLength: 12 }).filter((s) => !s.includes('{{') && !/[\r]/.test(s));
const mapArb = fc.dictionary(nameArb, valueArb, { maxKeys: 3 });
const exprArb = fc.constantFrom('up == 0', 'sum by (job) (rate(http_requests_total[5m])) > 0.5', 'x > 1 and y < 2', 'absent(foo{bar="baz"})', 'avg_over_time(m[10m]) > bool 3');
const durationArb = fc.integer({ min: 1, max: 100_000 }).map((s) => s * 1_000);
const alertArb = fc.record(
  { alert: nameArb, expr: exprArb, for: durationArb, keep_firing_for: durationArb, labels: mapArb, annotations: mapArb },
  { requiredKeys: ['alert', 'expr'] },
);
const recordArb = fc.record({ record: fc.stringMatching(/^[a-zA-Z_:][a-zA-Z0-9_:]{0,10}$/), expr: exprArb, labels: mapArb }, { requiredKeys: ['record', 'expr'] });
const groupsArb = fc.uniqueArray(
  fc.record({ name: fc.oneof(nameArb, fc.string({ minLength: 1, maxLength: 8 }).filter((s) => !/[\n\r]/.test(s))), interval: fc.option(durationArb, { nil: undefined }), rules: fc.array(fc.oneof(alertArb, recordArb), { maxLength: 4 }) }),
  { selector: (g) => g.name, maxLength: 4 },
);

t.test('printing rule groups and reading them back gives the same groups', async (t) => {
  fc.assert(
    fc.property(groupsArb, (generated) => {
      // Plain objects (fast-check's records have no prototype), keys that are undefined left out.
      const groups = JSON.parse(JSON.stringify(generated.map((g) => ({ ...g, file: 'p.rules' })))) as RuleGroup[];
      const text = formatRulesDsl(groups);
      return isDeepStrictEqual(parseRulesDsl(text, 'p.rules'), groups);
    }),
    { numRuns: 300 },
  );
  t.pass('300 generated rule sets round-tripped');
});

t.test('templates render as Prometheus renders them', async (t) => {
  const data = { labels: { host: 'web-1', job: 'node' }, value: 0.934567, externalLabels: { cluster: 'eu' } };
  t.equal(expandTemplate('CPU high on {{ $labels.host }}: {{ $value }}', data), 'CPU high on web-1: 0.934567');
  t.equal(expandTemplate('{{ .Labels.job }} {{ .Value }}', data), 'node 0.934567');
  t.equal(expandTemplate('{{ printf "%.2f" $value }} / {{ $value | printf "%.1f" }}', data), '0.93 / 0.9');
  t.equal(expandTemplate('{{ $value | humanizePercentage }}', data), '93.46%');
  t.equal(expandTemplate('{{ 1234567 | humanize }} {{ 0.0012 | humanize }} {{ 2048 | humanize1024 }}', data), '1.235M 1.2m 2ki');
  t.equal(expandTemplate('{{ 3725 | humanizeDuration }} {{ 0.25 | humanizeDuration }}', data), '1h 2m 5s 250ms');
  t.equal(expandTemplate('{{ $externalLabels.cluster | toUpper }} {{ $labels.missing }}|', data), 'EU |');
  t.equal(expandTemplate('{{ $labels }}', data), 'map[host:web-1 job:node]');
  t.equal(expandTemplate('no actions', data), 'no actions');
  t.throws(() => parseTemplate('{{ $value '), /unclosed/);
  t.throws(() => parseTemplate('{{ humanize }}'), /takes 1 argument/);
  t.throws(() => parseTemplate('{{ }}'), /empty action/);
});

t.test('anomaly functions expand to PromQL the engine parses', async (t) => {
  const z = desugarAnomaly('zscore(rate(errors_total[5m]), 1h) > 3');
  t.equal(z, '(((rate(errors_total[5m])) - avg_over_time((rate(errors_total[5m]))[1h:])) / stddev_over_time((rate(errors_total[5m]))[1h:])) > 3');
  for (const text of ['madscore(x, 30m) > 4', 'forecast_error(sum(y), 2h, 0.3, 0.2) > 3', 'zscore(madscore(x, 5m), 1h) > 1 and on() vector(1)']) {
    t.doesNotThrow(() => parsePromQL(desugarAnomaly(text)), text);
  }
  t.equal(desugarAnomaly('my_zscore(x) + zscore_total'), 'my_zscore(x) + zscore_total', 'only the functions themselves');
  t.throws(() => desugarAnomaly('zscore(x) > 1'), /takes 2 arguments/);
  t.throws(() => desugarAnomaly('zscore(x, 1h'), /unclosed/);
});

t.test('Prometheus YAML alert labels and annotations are checked as templates too', async (t) => {
  t.throws(() => parseRuleFile('groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x > 1\n        annotations:\n          s: "{{ $nope }}"\n', 'bad.yaml'), { code: 'CRAFT_CONFIG_INVALID', message: /bad\.yaml:7:\d+: .*bad template: unknown value/ });
});
