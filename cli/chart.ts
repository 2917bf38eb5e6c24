/**
 * Charts: Vega-Lite specifications rendered to SVG files (vega's headless renderer), and
 * small line plots for the terminal (asciichart).
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import asciichart from 'asciichart';

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export interface TimelineSeries {
  id: string;
  points: { second: number; okPerSecond: number; p50Ms: number; p99Ms: number }[];
}

export interface Marker {
  second: number;
  label: string;
}

/** Stacked panels over time: successful requests per second, p50/p99 latency, and (when given) resident memory. */
export function timelineSpec(title: string, series: TimelineSeries[], markers: Marker[], memory: [second: number, mb: number][] = []): TopLevelSpec {
  const rows = series.flatMap((s) => s.points.map((p) => ({ load: s.id, ...p })));
  const latencyRows = rows.flatMap((r) => [
    { load: r.load, second: r.second, statistic: 'p50', ms: r.p50Ms },
    { load: r.load, second: r.second, statistic: 'p99', ms: r.p99Ms },
  ]);
  const markerLayer = {
    data: { values: markers },
    mark: { type: 'rule' as const, strokeDash: [4, 3], color: '#c0392b' },
    encoding: { x: { field: 'second', type: 'quantitative' as const } },
  };
  const markerText = {
    data: { values: markers },
    mark: { type: 'text' as const, align: 'left' as const, dx: 3, dy: -4, color: '#c0392b', fontSize: 10 },
    encoding: { x: { field: 'second', type: 'quantitative' as const }, y: { value: 8 }, text: { field: 'label', type: 'nominal' as const } },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    background: 'white',
    vconcat: [
      {
        width: 640,
        height: 180,
        layer: [
          {
            data: { values: rows },
            mark: { type: 'line', point: false },
            encoding: {
              x: { field: 'second', type: 'quantitative', title: 'seconds since start' },
              y: { field: 'okPerSecond', type: 'quantitative', title: '2xx requests / s' },
              color: { field: 'load', type: 'nominal' },
            },
          },
          markerLayer,
          markerText,
        ],
      },
      {
        width: 640,
        height: 180,
        layer: [
          {
            data: { values: latencyRows },
            mark: { type: 'line' },
            encoding: {
              x: { field: 'second', type: 'quantitative', title: 'seconds since start' },
              y: { field: 'ms', type: 'quantitative', title: 'latency ms', scale: { type: 'symlog' } },
              color: { field: 'statistic', type: 'nominal' },
              strokeDash: { field: 'load', type: 'nominal' },
            },
          },
          markerLayer,
        ],
      },
      ...(memory.length === 0
        ? []
        : [
            {
              width: 640,
              height: 120,
              layer: [
                {
                  data: { values: memory.map(([second, mb]) => ({ second, mb })) },
                  mark: { type: 'line' as const, color: '#555' },
                  encoding: { x: { field: 'second', type: 'quantitative' as const, title: 'seconds since start' }, y: { field: 'mb', type: 'quantitative' as const, title: 'resident memory MB' } },
                },
                markerLayer,
              ],
            },
          ]),
    ],
  } as TopLevelSpec;
}

/** Grouped bars: one group per category, one bar per series (e.g. phase × workload). */
export function groupedBarSpec(title: string, rows: { category: string; series: string; value: number }[], valueTitle: string, logScale = false): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    background: 'white',
    data: { values: rows },
    width: { step: 14 },
    height: 220,
    mark: 'bar',
    encoding: {
      column: { field: 'category', type: 'nominal', title: null, header: { labelAngle: -30, labelAlign: 'right', labelOrient: 'bottom' } },
      x: { field: 'series', type: 'nominal', axis: null },
      y: { field: 'value', type: 'quantitative', title: valueTitle, ...(logScale ? { scale: { type: 'symlog' } } : {}) },
      color: { field: 'series', type: 'nominal', title: null },
    },
  } as TopLevelSpec;
}

/** A terminal line plot, at most `width` points wide. */
export function asciiPlot(values: number[], height = 8, width = 72): string {
  if (values.length === 0) return '';
  const step = Math.max(1, Math.ceil(values.length / width));
  const sampled: number[] = [];
  for (let i = 0; i < values.length; i += step) sampled.push(Math.max(...values.slice(i, i + step)));
  return asciichart.plot(sampled, { height });
}
