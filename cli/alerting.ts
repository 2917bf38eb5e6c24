/**
 * The alerting verbs of the CLI, over NATS to a running platform's alerting actor:
 *
 *   craft alerts [--all] [--json]                       pending and firing alerts (--all: resolved too)
 *   craft silence add <matcher>… (--duration 2h | --end <time>) [--comment …] [--author …]
 *   craft silence list [--json]
 *   craft silence expire <id>
 *   craft ack <matcher>… | --fingerprint <fp>… [--comment …] [--author …]   (phase 4)
 *   craft oncall [--at <time>] [--json]                                    (phase 4)
 *
 * A matcher is `name=value`, `name!=value`, `name=~regex` or `name!~regex` (value optionally
 * quoted), as amtool takes them.
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { parseMatcher } from '../core/rules/matcher.js';
import { CraftError } from '../core/errors.js';
import { parseDurationMs } from '../core/promql/parser.js';
import { SUBJECTS } from '../core/subjects.js';
import type { AlertRecord, AlertView, OnCall, Silence } from '../core/slots/alerting.js';
import { connectToPlatform, type PlatformFlags } from './connect.js';
import { renderTable } from './table.js';


const matcherText = (m: Silence['matchers'][number]): string => `${m.name}${m.op}${JSON.stringify(m.value)}`;
const since = (ms: number, now: number): string => (ms === 0 ? '-' : `${new Date(ms).toISOString()} (${Math.round((now - ms) / 1_000)} s ago)`);

async function withBus<T>(flags: PlatformFlags, work: (bus: Awaited<ReturnType<typeof connectToPlatform>>) => Promise<T>): Promise<T> {
  const bus = await connectToPlatform(flags);
  try {
    return await work(bus);
  } finally {
    await bus.close();
  }
}

export function addAlertingCommands(program: Command, platformFlags: (command: Command) => Command): void {
  platformFlags(program.command('alerts').description('list the alerts of a running platform (pending and firing; --all adds resolved)').option('--all', 'include resolved alerts').option('--json', 'print JSON')).action(
    async (flags: PlatformFlags & { all?: boolean; json?: boolean }) => {
      const { alerts } = await withBus(flags, (bus) => bus.request<{ alerts: AlertView[] }>(SUBJECTS.alertingAlerts, {}));
      const shown = alerts.filter((a) => flags.all === true || a.state !== 'resolved');
      if (flags.json === true) {
        process.stdout.write(JSON.stringify(shown, null, 2) + '\n');
        return;
      }
      const now = Date.now();
      const rows = shown.map((a) => {
        const { alertname, ...rest } = a.labels;
        const muted = [...a.silencedBy.map((id) => `silence ${id}`), ...a.inhibitedBy.map((fp) => `inhibited by ${fp}`)].join(', ');
        const ack = a.acknowledgedBy === undefined ? '-' : `${a.acknowledgedBy}${a.ackComment ? `: ${a.ackComment}` : ''}`;
        return [a.state, alertname ?? a.rule, JSON.stringify(rest), since(a.state === 'pending' ? a.activeAtMs : a.firedAtMs, now), muted === '' ? '-' : muted, ack, a.fingerprint, a.annotations.summary ?? ''];
      });
      process.stdout.write(renderTable(['state', 'alertname', 'labels', 'since', 'muted', 'acknowledged', 'fingerprint', 'summary'], rows) + `\n${shown.length} alert(s)\n`);
    },
  );

  const silence = program.command('silence').description('create, list and expire silences in a running platform');
  platformFlags(
    silence
      .command('add')
      .description('silence the alerts matching every matcher, e.g. craft silence add instance=db-1 \'job=~"api.*"\' --duration 2h --comment "disk swap"')
      .argument('<matchers...>', 'name=value, name!=value, name=~regex, name!~regex')
      .option('--duration <duration>', 'how long from now (or from --start), e.g. 30m, 2h')
      .option('--start <time>', 'when it starts: an ISO time (default now)')
      .option('--end <time>', 'when it ends: an ISO time (instead of --duration)')
      .option('--comment <text>', 'why', '')
      .option('--author <name>', 'who (default: the user name)'),
  ).action(async (texts: string[], flags: PlatformFlags & { duration?: string; start?: string; end?: string; comment: string; author?: string }) => {
    const matchers = texts.map(parseMatcher);
    const startsAtMs = flags.start === undefined ? Date.now() : Date.parse(flags.start);
    if (!Number.isFinite(startsAtMs)) throw new CraftError('CRAFT_BAD_REQUEST', `--start is not a time: ${flags.start}`);
    if ((flags.duration === undefined) === (flags.end === undefined)) throw new CraftError('CRAFT_BAD_REQUEST', 'give either --duration or --end');
    const endsAtMs = flags.end !== undefined ? Date.parse(flags.end) : startsAtMs + parseDurationMs(flags.duration!);
    if (!Number.isFinite(endsAtMs)) throw new CraftError('CRAFT_BAD_REQUEST', `--end is not a time: ${flags.end}`);
    const created = await withBus(flags, (bus) =>
      bus.request<Silence>(SUBJECTS.alertingSilenceCreate, { matchers, startsAtMs, endsAtMs, createdBy: flags.author ?? userInfo().username, comment: flags.comment }),
    );
    process.stdout.write(`silence ${created.id}: ${created.matchers.map(matcherText).join(', ')} until ${new Date(created.endsAtMs).toISOString()}\n`);
  });
  platformFlags(silence.command('list').description('list silences (active, pending and expired)').option('--json', 'print JSON')).action(async (flags: PlatformFlags & { json?: boolean }) => {
    const { silences } = await withBus(flags, (bus) => bus.request<{ silences: Silence[] }>(SUBJECTS.alertingSilences, {}));
    if (flags.json === true) {
      process.stdout.write(JSON.stringify(silences, null, 2) + '\n');
      return;
    }
    const now = Date.now();
    const state = (s: Silence): string => (now < s.startsAtMs ? 'pending' : now < s.endsAtMs ? 'active' : 'expired');
    const rows = silences.map((s) => [s.id, state(s), s.matchers.map(matcherText).join(', '), new Date(s.startsAtMs).toISOString(), new Date(s.endsAtMs).toISOString(), s.createdBy, s.comment]);
    process.stdout.write(renderTable(['id', 'state', 'matchers', 'starts', 'ends', 'by', 'comment'], rows) + `\n${silences.length} silence(s)\n`);
  });
  platformFlags(silence.command('expire').description('end a silence now').argument('<id>', 'the silence id (craft silence list)')).action(async (id: string, flags: PlatformFlags) => {
    const expired = await withBus(flags, (bus) => bus.request<Silence>(SUBJECTS.alertingSilenceExpire, { id }));
    process.stdout.write(`silence ${expired.id} expired at ${new Date(expired.endsAtMs).toISOString()}\n`);
  });

  platformFlags(
    program
      .command('ack')
      .description('acknowledge firing alerts (phase 4): no more repeats or escalation until they resolve or fire again, e.g. craft ack alertname=HighCPU host=web-1 --comment "on it"')
      .argument('[matchers...]', 'name=value, name!=value, name=~regex, name!~regex: every firing alert matching all of them')
      .option('--fingerprint <fp...>', 'alerts by fingerprint (craft alerts shows them)')
      .option('--comment <text>', 'why, or what is being done', '')
      .option('--author <name>', 'who (default: the user name)'),
  ).action(async (texts: string[], flags: PlatformFlags & { fingerprint?: string[]; comment: string; author?: string }) => {
    const matchers = texts.map(parseMatcher);
    if (matchers.length === 0 && (flags.fingerprint ?? []).length === 0) throw new CraftError('CRAFT_BAD_REQUEST', 'give matchers (alertname=HighCPU) or --fingerprint');
    const { acknowledged } = await withBus(flags, (bus) =>
      bus.request<{ acknowledged: AlertRecord[] }>(SUBJECTS.alertingAck, { matchers, ...(flags.fingerprint === undefined ? {} : { fingerprints: flags.fingerprint }), by: flags.author ?? userInfo().username, comment: flags.comment }),
    );
    for (const a of acknowledged) process.stdout.write(`acknowledged ${a.fingerprint} ${JSON.stringify(a.labels)} by ${a.acknowledgedBy ?? '?'} at ${new Date(a.acknowledgedAtMs ?? 0).toISOString()}\n`);
    process.stdout.write(`${acknowledged.length} alert(s) acknowledged\n`);
  });
  platformFlags(program.command('oncall').description('who is on call in each schedule (phase 4)').option('--at <time>', 'an ISO time (default now)').option('--json', 'print JSON')).action(
    async (flags: PlatformFlags & { at?: string; json?: boolean }) => {
      const atMs = flags.at === undefined ? Date.now() : Date.parse(flags.at);
      if (!Number.isFinite(atMs)) throw new CraftError('CRAFT_BAD_REQUEST', `--at is not a time: ${flags.at}`);
      const { oncall } = await withBus(flags, (bus) => bus.request<{ oncall: OnCall[] }>(SUBJECTS.alertingOnCall, { atMs }));
      if (flags.json === true) {
        process.stdout.write(JSON.stringify(oncall, null, 2) + '\n');
        return;
      }
      const rows = oncall.map((o) => [o.schedule, o.receiver ?? '(nobody)', o.source, o.untilMs === null ? '-' : new Date(o.untilMs).toISOString()]);
      process.stdout.write(renderTable(['schedule', 'on call', 'from', 'until'], rows) + `\n${oncall.length} schedule(s) at ${new Date(atMs).toISOString()}\n`);
    },
  );
}
