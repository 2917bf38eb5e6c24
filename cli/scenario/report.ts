/**
 * The scenario report: a table for the terminal, report.json with every number, and a
 * timeline chart (timeline.svg) of throughput and latency with swaps and faults marked.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadResult } from '../load/generator.js';
import type { Verdict } from './expectations.js';
import { renderTable } from '../table.js';
import { asciiPlot, renderSvg, timelineSpec } from '../chart.js';

export interface StepRecord {
  description: string;
  atSecond: number;
  ok: boolean;
  detail: string;
}

export interface ScenarioReport {
  name: string;
  description: string;
  file: string;
  runId: string;
  startedAt: string;
  durationMs: number;
  plugins: Record<string, string>;
  loads: LoadResult[];
  /** Seconds from the scenario start to each load's start. */
  loadOffsets: Record<string, number>;
  steps: StepRecord[];
  verdicts: Verdict[];
  events: { atSecond: number; text: string }[];
  /** Resident memory of the platform's process: [seconds since start, MB], every 250 ms. */
  memory: [number, number][];
  /** The V8 heap limit the process ran with (MB): `--max-old-space-size` sets it; the memory above is bounded by it plus what lives outside the heap. */
  heapLimitMb: number;
  /** The flags node ran with (`process.execArgv`), so a report says how its process was started. */
  nodeFlags: string[];
  passed: boolean;
  reportDir: string;
  dataDir: string | null;
}

const ms = (value: number): string => (value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2));

export function loadTable(loads: LoadResult[]): string {
  return renderTable(
    ['load', 'clients', 'mode', 'keep-alive', 'batch', 'requests', '2xx', 'success', 'req/s', 'samples/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'non-2xx'],
    loads.map((l) => [
      l.id,
      l.clients,
      l.mode,
      l.keepAlive ? 'yes' : 'no',
      l.batch,
      l.requests,
      l.ok,
      `${(l.successRate * 100).toFixed(2)}%`,
      l.okPerSecond.toFixed(0),
      l.samplesPerSecond.toFixed(0),
      ms(l.latencyOk.p50),
      ms(l.latencyOk.p90),
      ms(l.latencyOk.p99),
      ms(l.latencyOk.max),
      Object.entries(l.statusCounts).filter(([status]) => !status.startsWith('2')).map(([status, n]) => `${status}:${n}`).join(' ') || '-',
    ]),
  );
}

export function renderReport(report: ScenarioReport): string {
  const lines: string[] = [];
  lines.push(`Scenario ${report.name} — ${report.passed ? 'PASSED' : 'FAILED'} in ${(report.durationMs / 1_000).toFixed(1)} s`);
  if (report.description !== '') lines.push(report.description.trim());
  lines.push('', `Plugins: ${Object.entries(report.plugins).map(([slot, id]) => `${slot}=${id}`).join('  ')}`);
  lines.push('', 'Timeline');
  for (const step of report.steps) lines.push(`  ${step.atSecond.toFixed(1).padStart(6)}s  ${step.ok ? '✔' : '✘'} ${step.description}${step.detail === '' ? '' : ` — ${step.detail}`}`);
  for (const event of report.events) lines.push(`  ${event.atSecond.toFixed(1).padStart(6)}s  ! ${event.text}`);
  if (report.loads.length > 0) {
    lines.push('', 'Load (success = 2xx only; latency percentiles from every recorded 2xx answer)', loadTable(report.loads));
    for (const load of report.loads) {
      if (load.timeline.length < 3) continue;
      lines.push('', `2xx requests per second, load ${load.id}:`, asciiPlot(load.timeline.map((b) => b.ok)));
    }
  }
  if (report.memory.length > 0) {
    const peak = report.memory.reduce((max, [, mb]) => Math.max(max, mb), 0);
    lines.push('', `Resident memory of the platform's process (MB; peak ${peak.toFixed(0)}; V8 heap limit ${report.heapLimitMb.toFixed(0)}):`, asciiPlot(report.memory.filter((_, i) => i % 4 === 0).map(([, mb]) => mb)));
  }
  lines.push('', 'Expectations');
  if (report.verdicts.length === 0) lines.push('  (none)');
  for (const v of report.verdicts) lines.push(`  ${v.passed ? '✔' : '✘'} ${v.expectation} — ${v.observed}`);
  const failedSteps = report.steps.filter((s) => !s.ok);
  if (failedSteps.length > 0) lines.push('', 'Failed steps', ...failedSteps.map((s) => `  ✘ ${s.description}: ${s.detail}`));
  lines.push('', `Report: ${join(report.reportDir, 'report.json')}  Chart: ${join(report.reportDir, 'timeline.svg')}`);
  return lines.join('\n') + '\n';
}

export async function writeReport(report: ScenarioReport): Promise<void> {
  writeFileSync(join(report.reportDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(report.reportDir, 'report.txt'), renderReport(report));
  const markers = [
    ...report.steps.filter((s) => /^(swap|fault)/.test(s.description)).map((s) => ({ second: s.atSecond, label: s.description })),
  ];
  const series = report.loads.map((load) => {
    const offset = report.loadOffsets[load.id] ?? 0;
    return { id: load.id, points: load.timeline.map((b) => ({ second: b.second + offset, okPerSecond: b.ok, p50Ms: b.p50, p99Ms: b.p99 })) };
  });
  // Every second's memory sample is enough for the chart.
  const memory = report.memory.filter((_, i) => i % 4 === 0);
  writeFileSync(join(report.reportDir, 'timeline.svg'), await renderSvg(timelineSpec(`Scenario ${report.name}`, series, markers, memory)));
}
