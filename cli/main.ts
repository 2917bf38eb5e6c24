#!/usr/bin/env node
/**
 * The `craft` command.
 */
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { CraftError, errorTableMarkdown } from '../core/errors.js';
import { PluginRegistry } from '../core/plugins/registry.js';
import { SLOT_NAMES } from '../core/slots/index.js';
import { SUBJECTS } from '../core/subjects.js';
import { createLogger } from '../core/log.js';
import { QueryClient } from '../core/query/client.js';
import { parseDurationMs } from '../core/promql/parser.js';
import { Platform } from '../actors/platform.js';
import { connectToPlatform, type PlatformFlags } from './connect.js';
import { StorageClient, type StorageInfo } from '../core/storage/client.js';
import { gatherStatus, renderStatus, renderStorageInfo } from './status.js';
import { renderTable } from './table.js';
import { resolveConfig, type ConfigFlags } from './config.js';
import { actorsHere } from '../core/config/schema.js';
import type { HandoverReply } from '../core/platform-context.js';
import { runScenario } from './scenario/runner.js';
import { runLoad, type LoadFlags } from './load/command.js';
import { benchIngestion, benchTargets, parseTarget, WORKLOADS } from './bench/ingestion.js';
import { benchStorage, parseStorageTarget, storageTargets } from './bench/storage.js';
import { benchStoragePlatform, LAYOUTS, type Layout } from './bench/storage-platform.js';
import { benchQuery } from './bench/query.js';
import { benchAlerting } from './bench/alerting.js';
import { benchQueue } from './bench/queue.js';
import { HOURS_MAX, SEED_DEFAULT, SERIES_MAX } from './bench/storage-dataset.js';
import { renderReport } from './scenario/report.js';
import { addAlertingCommands } from './alerting.js';
import { ensureRoleUsers } from '../core/nats/credentials.js';
import { serverAuthorization } from '../core/nats/roles.js';

const log = createLogger('craft');
const program = new Command();
program.name('craft').description('Systems Craft: a monitoring platform whose every optimisation phase is a hot-swappable plugin.').showHelpAfterError();

function addPlatformFlags(command: Command): Command {
  return command
    .option('--nats <url>', 'NATS server or cluster to use (default: an embedded nats-server; env CRAFT_NATS_URL)')
    .option('--nats-creds <file>', 'NATS credentials: a .creds file, or a users file with a user per role (default: the platform\'s own; env CRAFT_NATS_CREDS)')
    .option('--data <dir>', 'data directory (default ./data)');
}

addPlatformFlags(
  program
    .command('up')
    .description('run the platform until interrupted')
    .option('-c, --config <file>', 'configuration file (YAML or JSON)')
    .option('--only <actors>', 'run only these actors (comma-separated), joined to the rest over NATS')
    .option('--process-name <name>', 'name of this process in the supervision tree')
    .option('--ingestion-port <port>', 'ingestion HTTP port (default 8080)')
    .option('--query-port <port>', 'query HTTP port (default 9090)')
    .option('--alerting-port <port>', 'alerting HTTP port, Alertmanager\'s API (default 9093)')
    .option('--host <host>', 'interface to listen on (default 0.0.0.0)')
    .addOption(new Option('--child', 'started by a parent platform process').hideHelp()),
).action(async (flags: ConfigFlags & { child?: boolean }) => {
  const config = resolveConfig(flags);
  const platform = await Platform.start(config);
  let stopping = false;
  const shutdown = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info('stopping');
    await platform.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  void platform.root.exited.then((reason) => {
    if (reason.kind === 'crash') void shutdown(1);
  });
  if (flags.child === true && process.send !== undefined) {
    process.send({ type: 'ready' });
    process.on('disconnect', () => void shutdown(0));
  } else {
    const ports = platform.ports();
    process.stdout.write(
      [
        `craft: platform up (process ${config.processName}, pid ${process.pid})`,
        `  nats       ${platform.natsUrl}${platform.nats === undefined ? '' : ` (embedded, pid ${platform.nats.pid})`}${platform.natsCredentials.kind === 'none' ? '  (no credentials)' : `  credentials ${platform.natsCredentials.file}`}`,
        ...(ports.ingestion === undefined ? [] : [`  ingestion  http://${config.http.host}:${ports.ingestion}  (POST /metrics, GET /health)`]),
        ...(ports.query === undefined ? [] : [`  query      http://${config.http.host}:${ports.query}  (GET /query?name=)`]),
        ...(ports.alerting === undefined ? [] : [`  alerting   http://${config.http.host}:${ports.alerting}  (Alertmanager API v2: /api/v2/alerts, /api/v2/silences)`]),
        `  data       ${config.dataDir}`,
        `  actors     ${actorsHere(config).join(', ')}${config.processes.map((child) => `; ${child.actors.join(', ')} in process ${child.name}`).join('')}`,
        'Ctrl-C stops it. `craft status` shows the supervision tree.',
        '',
      ].join('\n'),
    );
  }
});

program
  .command('run')
  .description('run a scenario file: load, swaps, faults, expectations; prints a report and exits non-zero when an expectation fails')
  .argument('<scenario>', 'scenario YAML file, e.g. scenarios/quickstart.yaml')
  .option('--reports <dir>', 'where reports go', 'reports')
  .option('--keep-data', 'keep the run\'s data directory')
  .option('--no-progress', 'no progress bar')
  .option('--verbose', 'show platform logs')
  .action(async (file: string, flags: { reports: string; keepData?: boolean; progress: boolean; verbose?: boolean }) => {
    const report = await runScenario(file, { reportsDir: flags.reports, keepData: flags.keepData === true, progress: flags.progress, logLevel: flags.verbose === true ? 'info' : 'warn' });
    process.stdout.write(renderReport(report));
    if (!report.passed) {
      process.stderr.write(`craft: scenario ${report.name} FAILED: ${[...report.steps.filter((s) => !s.ok).map((s) => `${s.description}: ${s.detail}`), ...report.verdicts.filter((v) => !v.passed).map((v) => `${v.expectation} (observed ${v.observed})`)].join('; ')}\n`);
      process.exitCode = 1;
    }
  });

program
  .command('plugins')
  .description('list the registered plugins')
  .option('--json', 'print a JSON array')
  .action(async (flags: { json?: boolean }) => {
    const { registry, errors } = await PluginRegistry.load();
    const plugins = registry.list();
    if (flags.json === true) process.stdout.write(JSON.stringify(plugins, null, 2) + '\n');
    else {
      process.stdout.write(
        renderTable(
          ['id', 'craft', 'phase', 'slot', 'durable', 'summary'],
          plugins.map((p) => [p.id, `#${p.craft}`, p.phase, p.slot, p.durable === true ? 'yes' : '', p.summary]),
        ) + '\n',
      );
    }
    for (const error of errors) process.stderr.write(`craft: ${error.code}: ${error.message}\n`);
    if (errors.length > 0) process.exitCode = 1;
  });

addPlatformFlags(
  program
    .command('swap')
    .description(`hot-swap the plugin of a slot in a running platform (slots: ${SLOT_NAMES.join(', ')})`)
    .argument('<slot>', 'slot name, e.g. storage.engine')
    .argument('<plugin>', 'plugin id, see `craft plugins`')
    .option('--options <json>', 'plugin options as JSON', '{}'),
).action(async (slot: string, plugin: string, flags: PlatformFlags & { options: string }) => {
  let options: unknown;
  try {
    options = JSON.parse(flags.options);
  } catch {
    throw new CraftError('CRAFT_BAD_REQUEST', `--options is not JSON: ${flags.options}`);
  }
  const bus = await connectToPlatform(flags);
  try {
    const reply = await bus.request<HandoverReply>(SUBJECTS.controlSwap, { slot, plugin, options }, { timeoutMs: 10 * 60_000 });
    process.stdout.write(`swapped ${reply.slot}: ${reply.from} → ${reply.to} in ${reply.tookMs} ms (${reply.detail})\n`);
  } finally {
    await bus.close();
  }
});

addAlertingCommands(program, addPlatformFlags);

program
  .command('nats-config')
  .description('print the nats-server authorization block for a users file (one user per actor role, each allowed its subjects); writes the users file when missing')
  .requiredOption('--users <file>', 'users file: {"roles": {"<role>": {"user", "password"}}} (created with random passwords when missing, mode 0600)')
  .action((flags: { users: string }) => {
    const credentials = ensureRoleUsers(resolve(flags.users));
    if (credentials.kind !== 'roles') throw new CraftError('CRAFT_CONFIG_INVALID', `${flags.users} is a .creds file, not a users file`);
    process.stdout.write(`# Systems Craft roles (core/nats/roles.ts), users from ${credentials.file}\n${serverAuthorization(credentials.users)}`);
  });

addPlatformFlags(program.command('status').description('print the live supervision tree of a running platform').option('--json', 'print JSON')).action(
  async (flags: PlatformFlags & { json?: boolean }) => {
    const bus = await connectToPlatform(flags);
    try {
      const processes = await gatherStatus(bus);
      if (processes.length === 0) throw new CraftError('CRAFT_PLATFORM_NOT_RUNNING', 'no platform process answered on NATS');
      // Storage's own figures, one entry per storage member that answers (a member may run
      // elsewhere or be restarting).
      const client = new StorageClient(bus);
      const storage = await client.infoAll().catch(() => [] as StorageInfo[]);
      client.close();
      if (flags.json === true) process.stdout.write(JSON.stringify({ processes, storage }, null, 2) + '\n');
      else process.stdout.write(renderStatus(processes) + storage.map(renderStorageInfo).join(''));
    } finally {
      await bus.close();
    }
  },
);

function timeFlag(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  if (value === 'now') return nowMs;
  const relative = /^-(\d+)(ms|s|m|h|d)$/.exec(value);
  if (relative !== null) {
    const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
    return nowMs - Number(relative[1]) * unit;
  }
  const absolute = Number(value);
  if (Number.isFinite(absolute)) return absolute;
  const parsed = Date.parse(value);
  if (Number.isFinite(parsed)) return parsed;
  throw new CraftError('CRAFT_BAD_REQUEST', `not a time: ${value} (use ms since epoch, an ISO date, "now", or -5m)`);
}

addPlatformFlags(
  program
    .command('query')
    .description('evaluate a query expression in a running platform (over NATS request-reply)')
    .argument('<expr>', 'PromQL expression, e.g. \'sum by (host) (rate(cpu_seconds_total[5m]))\'')
    .option('--start <time>', 'range start: ms, ISO date, or relative like -5m (without --step: the stored samples of a plain selector)')
    .option('--end <time>', 'range end (default now when --start is given)')
    .option('--step <duration>', 'range query step, e.g. 15s or 1m (needs --start)')
    .option('--explain', 'print how the active evaluator would run the query (tree, storage selects, rewrites) instead of running it')

    .option('--time <time>', 'evaluation time of an instant query (default now)')
    .option('--json', 'print the raw JSON result'),
).action(async (expr: string, flags: PlatformFlags & { start?: string; end?: string; time?: string; step?: string; json?: boolean; explain?: boolean }) => {
  const now = Date.now();
  const startMs = timeFlag(flags.start, now);
  const endMs = timeFlag(flags.end, now) ?? (startMs === undefined ? undefined : now);
  const timeMs = timeFlag(flags.time, now);
  const stepMs = flags.step === undefined ? undefined : parseDurationMs(flags.step);
  if (stepMs !== undefined && startMs === undefined) throw new CraftError('CRAFT_BAD_REQUEST', '--step needs --start (and optionally --end)');
  const bus = await connectToPlatform(flags);
  try {
    const request = { expr, ...(startMs === undefined ? {} : { startMs }), ...(endMs === undefined ? {} : { endMs }), ...(timeMs === undefined ? {} : { timeMs }), ...(stepMs === undefined ? {} : { stepMs }) };
    if (flags.explain === true) {
      const plan = await new QueryClient(bus).explain(request);
      process.stdout.write(flags.json === true ? JSON.stringify(plan, null, 2) + '\n' : plan.text + '\n');
      return;
    }
    const result = await new QueryClient(bus).query(request);
    for (const warning of result.warnings ?? []) process.stderr.write(`warning: ${warning}\n`);
    if (flags.json === true) {
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      return;
    }
    if (result.resultType === 'matrix') {
      const rows = result.result.flatMap((s) => s.timestampsMs.map((t, i) => [JSON.stringify(s.labels), new Date(t).toISOString(), s.values[i]!]));
      process.stdout.write(renderTable(['series', 'time', 'value'], rows) + `\n${result.result.length} series, ${rows.length} samples\n`);
    } else if (result.resultType === 'vector') {
      process.stdout.write(renderTable(['series', 'time', 'value'], result.result.map((r) => [JSON.stringify(r.labels), new Date(r.timestampMs).toISOString(), r.value])) + '\n');
    } else {
      process.stdout.write(`${String(result.result.value)} @ ${new Date(result.result.timestampMs).toISOString()}\n`);
    }
  } finally {
    await bus.close();
  }
});

program
  .command('load')
  .description('generate HTTP load against an ingestion endpoint and print the result as JSON (success = 2xx only)')
  .requiredOption('--url <url>', 'base URL, e.g. http://127.0.0.1:8080')
  .option('--connections <n>', 'concurrent connections (closed loop: one request in flight each)', '100')
  .option('--duration <s>', 'seconds', '10')
  .option('--batch <n>', 'metrics per request', '10')
  .option('--close', 'Connection: close (a new connection per request)')
  .option('--rate <n>', 'paced mode: total requests per second (default: closed loop)')
  .option('--path <path>', 'path to post to', '/metrics')
  .action(async (flags: LoadFlags) => {
    process.stdout.write(JSON.stringify(await runLoad(flags)) + '\n');
  });

program
  .command('bench')
  .description('benchmarks; `craft bench ingestion` runs every ingestion phase under the same workloads, `craft bench storage` every storage engine on every KV engine')
  .argument('<what>', 'ingestion | storage | query | alerting | queue')
  .option('--duration <s>', 'ingestion: seconds per run; queue: seconds a measurement (5 unless given)', '10')
  .option(
    '--phases <ids>',
    'comma-separated targets. ingestion: bare, or plugin[:option=value,…] (default: bare, every ingestion.server plugin, ingestion.event-driven:loops=2). storage: engine@kv[:option=value,…], @- for no KV engine, options series and hours lower the dataset (default: every storage.engine on every storage.kv, craft0.jsonl-store@-:hours=1)',
  )
  .option('--workloads <ids>', `ingestion: comma-separated workloads (default all): ${WORKLOADS.map((w) => w.id).join(',')}`)
  .option('--series <n>', 'storage: series in the dataset (default 1000, at most 10000)')
  .option('--hours <h>', 'storage: hours of 15 s scrapes per series (default 24)')
  .option('--rules <n>', 'alerting: threshold rules evaluated (default 1000)')
  .option('--runs <n>', 'alerting: detection-latency runs (default 20)')
  .option('--notifications <n>', 'alerting: notifications sent through a faulty receiver (default 500)')
  .option('--escalations <n>', 'alerting: alert groups escalated through the platform, half of them acknowledged (default 200)')
  .option('--out <dir>', 'where results go', 'docs/results')
  .option('--platform', 'storage: send the dataset through `craft up` (POST /write → queue → storage actor) and measure applied vs acknowledged samples/s and ack → queryable lag, instead of the in-process engines')
  .option('--connections <n>', 'storage --platform: concurrent keep-alive connections', '8')
  .option('--lines <n>', 'storage --platform: lines (samples) a request', '1000')
  .option('--layouts <ids>', 'storage --platform: where the actors run, comma-separated: one (all in one process, the default of craft up), split (queue and storage in processes of their own), backlog (storage started after the load); default all three')
  .action(async (what: string, flags: { duration: string; phases?: string; workloads?: string; series?: string; hours?: string; out: string; platform?: boolean; connections: string; lines: string; layouts?: string; rules?: string; runs?: string; notifications?: string; escalations?: string }) => {
    if (what === 'alerting') {
      const rules = Number(flags.rules ?? 1_000);
      const runs = Number(flags.runs ?? 20);
      const notifications = Number(flags.notifications ?? 500);
      const escalations = Number(flags.escalations ?? 200);
      if (!(Number.isInteger(rules) && rules >= 1 && rules <= 100_000 && Number.isInteger(runs) && runs >= 1 && runs <= 1_000 && Number.isInteger(notifications) && notifications >= 1 && notifications <= 10_000 && Number.isInteger(escalations) && escalations >= 2 && escalations <= 10_000)) {
        throw new CraftError('CRAFT_BAD_REQUEST', '--rules must be an integer 1–100000, --runs 1–1000, --notifications 1–10000 and --escalations 2–10000');
      }
      const command = ['node bin/craft.js bench alerting', ...(flags.rules === undefined ? [] : [`--rules ${rules}`]), ...(flags.runs === undefined ? [] : [`--runs ${runs}`]), ...(flags.notifications === undefined ? [] : [`--notifications ${notifications}`]), ...(flags.escalations === undefined ? [] : [`--escalations ${escalations}`])].join(' ');
      await benchAlerting({ rules, latencyRuns: runs, notifications, escalationGroups: escalations, outDir: flags.out, command });
      return;
    }
    if (what === 'storage' && flags.platform === true) {
      const { registry } = await PluginRegistry.load();
      const dataset = { series: Number(flags.series ?? 1_000), hours: Number(flags.hours ?? 24), seed: SEED_DEFAULT };
      const target = parseStorageTarget(flags.phases ?? 'storage.time-index@kv.level', dataset);
      registry.resolve('storage.engine', target.engine);
      registry.resolve('storage.kv', target.kv ?? 'kv.level');
      const clients = Number(flags.connections);
      const lines = Number(flags.lines);
      if (!(Number.isInteger(clients) && clients >= 1 && clients <= 1_000 && Number.isInteger(lines) && lines >= 1 && lines <= 100_000)) {
        throw new CraftError('CRAFT_BAD_REQUEST', '--connections must be an integer 1–1000 and --lines 1–100000');
      }
      const command = ['node bin/craft.js bench storage --platform', ...(flags.series === undefined ? [] : [`--series ${flags.series}`]), ...(flags.hours === undefined ? [] : [`--hours ${flags.hours}`]), ...(flags.phases === undefined ? [] : [`--phases ${flags.phases}`]), `--connections ${clients}`, `--lines ${lines}`, ...(flags.layouts === undefined ? [] : [`--layouts ${flags.layouts}`])].join(' ');
      const layouts = (flags.layouts ?? 'one,split,backlog').split(',').map((l) => l.trim());
      for (const layout of layouts) if (!(layout in LAYOUTS)) throw new CraftError('CRAFT_BAD_REQUEST', `unknown layout ${layout}; choose from ${Object.keys(LAYOUTS).join(', ')}`);
      await benchStoragePlatform({ layouts: layouts as Layout[], dataset: target.dataset, engine: target.engine, kv: target.kv ?? 'kv.level', clients, linesPerRequest: lines, outDir: flags.out, command });
      return;
    }
    if (what === 'storage') {
      const { registry } = await PluginRegistry.load();
      const defaults = { series: Number(flags.series ?? 1_000), hours: Number(flags.hours ?? 24), seed: SEED_DEFAULT };
      const targets = flags.phases === undefined ? storageTargets(registry, defaults) : flags.phases.split(',').map((t) => parseStorageTarget(t.trim(), defaults));
      for (const t of targets) {
        registry.checkOptions('storage.engine', t.engine, t.options);
        if (t.kv !== undefined) registry.resolve('storage.kv', t.kv);
        if (!(Number.isInteger(t.dataset.series) && t.dataset.series >= 1 && t.dataset.series <= SERIES_MAX && t.dataset.hours > 0 && t.dataset.hours <= HOURS_MAX)) {
          throw new CraftError('CRAFT_BAD_REQUEST', `${t.id}: series must be an integer 1–${SERIES_MAX} and hours in (0, ${HOURS_MAX}]`);
        }
      }
      const command = ['node bin/craft.js bench storage', ...(flags.series === undefined ? [] : [`--series ${flags.series}`]), ...(flags.hours === undefined ? [] : [`--hours ${flags.hours}`]), ...(flags.phases === undefined ? [] : [`--phases ${flags.phases}`])].join(' ');
      await benchStorage({ targets, dataset: defaults, outDir: flags.out, command });
      return;
    }
    if (what === 'query') {
      const { registry } = await PluginRegistry.load();
      const dataset = { series: Number(flags.series ?? 1_000), hours: Number(flags.hours ?? 24), seed: SEED_DEFAULT };
      if (!(Number.isInteger(dataset.series) && dataset.series >= 1 && dataset.series <= SERIES_MAX && dataset.hours > 0 && dataset.hours <= HOURS_MAX)) {
        throw new CraftError('CRAFT_BAD_REQUEST', `series must be an integer 1–${SERIES_MAX} and hours in (0, ${HOURS_MAX}]`);
      }
      const phases = flags.phases?.split(',').map((p) => p.trim()) ?? registry.list().filter((p) => p.slot === 'query.evaluator' && p.craft === 4).sort((a, b) => a.phase - b.phase).map((p) => p.id);
      for (const phase of phases) registry.resolve('query.evaluator', phase);
      const command = ['node bin/craft.js bench query', ...(flags.series === undefined ? [] : [`--series ${flags.series}`]), ...(flags.hours === undefined ? [] : [`--hours ${flags.hours}`]), ...(flags.phases === undefined ? [] : [`--phases ${flags.phases}`])].join(' ');
      await benchQuery({ dataset, phases, outDir: flags.out, command });
      return;
    }
    if (what === 'queue') {
      // Produce measurements run 5 s unless --duration says otherwise.
      const seconds = flags.duration === '10' ? 5 : Number(flags.duration);
      if (!(seconds > 0 && seconds <= 600)) throw new CraftError('CRAFT_BAD_REQUEST', '--duration must be seconds in (0, 600]');
      const command = ['node bin/craft.js bench queue', ...(flags.duration === '10' ? [] : [`--duration ${flags.duration}`])].join(' ');
      await benchQueue({ seconds, outDir: flags.out, command });
      return;
    }
    if (what !== 'ingestion') throw new CraftError('CRAFT_BAD_REQUEST', `unknown benchmark ${what}; available: ingestion, storage, query, alerting, queue`);
    const targets = flags.phases?.split(',') ?? (await benchTargets());
    // `bare`, or an ingestion server plugin with options it accepts (`ingestion.event-driven:loops=2,http=node`).
    const { registry } = await PluginRegistry.load();
    const unknown = targets.filter((t) => t !== 'bare' && registry.get(parseTarget(t).plugin)?.slot !== 'ingestion.server');
    if (unknown.length > 0) throw new CraftError('CRAFT_BAD_REQUEST', `unknown phases: ${unknown.join(', ')}; choose bare or an ingestion.server plugin from \`craft plugins\``);
    for (const t of targets) if (t !== 'bare') registry.checkOptions('ingestion.server', parseTarget(t).plugin, parseTarget(t).options);
    const workloads = flags.workloads?.split(',') ?? WORKLOADS.map((w) => w.id);
    const command = ['craft bench ingestion', `--duration ${flags.duration}`, ...(flags.phases === undefined ? [] : [`--phases ${flags.phases}`]), ...(flags.workloads === undefined ? [] : [`--workloads ${flags.workloads}`])].join(' ');
    await benchIngestion({ durationS: Number(flags.duration), targets, workloads, outDir: flags.out, command });
  });

program
  .command('errors')
  .description('print the table of error codes (markdown)')
  .action(() => {
    process.stdout.write(errorTableMarkdown());
  });

export { program };

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CraftError) {
      process.stderr.write(`craft: ${error.code}: ${error.message}\n`);
      process.exit(error.code === 'CRAFT_CONFIG_INVALID' || error.code === 'CRAFT_SCENARIO_INVALID' || error.code === 'CRAFT_BAD_REQUEST' ? 2 : 1);
    }
    process.stderr.write(`craft: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  }
}

await main();
