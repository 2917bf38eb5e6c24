/**
 * Annotation and label templates, the part of Prometheus's Go templates that alert rules use:
 *
 *   {{ $labels.host }}   {{ $value }}   {{ $value | humanize }}   {{ printf "%.2f" $value }}
 *   {{ .Labels.host }}   {{ .Value }}   {{ $externalLabels.cluster }}   {{ "text" | toUpper }}
 *
 * A template is parsed once when its rule loads (errors name the offset), then rendered per
 * alert. Functions: humanize, humanize1024, humanizePercentage, humanizeDuration, printf,
 * toUpper, toLower and title; as in Go, a piped value is the function's last argument. Anything
 * else is refused at load, not at render time: an alert never fails to render.
 */
export interface TemplateData {
  labels: Record<string, string>;
  value: number;
  externalLabels?: Record<string, string>;
}

type Arg = { kind: 'labels'; name?: string } | { kind: 'external'; name?: string } | { kind: 'value' } | { kind: 'string'; text: string } | { kind: 'number'; value: number };
interface Call {
  func: string;
  args: Arg[];
}
type Part = { kind: 'text'; text: string } | { kind: 'action'; head: Call | Arg; pipeline: Call[] };

export class TemplateError extends Error {
  constructor(readonly offset: number, detail: string) {
    super(detail);
  }
}

const FUNCTIONS: Record<string, { args: number; apply: (input: unknown, args: unknown[]) => string }> = {
  humanize: { args: 0, apply: (v) => humanize(Number(v), 1000, ['', 'k', 'M', 'G', 'T', 'P', 'E'], ['', 'm', 'u', 'n', 'p', 'f', 'a']) },
  humanize1024: { args: 0, apply: (v) => humanize(Number(v), 1024, ['', 'ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'], ['']) },
  humanizePercentage: { args: 0, apply: (v) => `${formatG(Number(v) * 100, 4)}%` },
  humanizeDuration: { args: 0, apply: (v) => humanizeDuration(Number(v)) },
  toUpper: { args: 0, apply: (v) => text(v).toUpperCase() },
  toLower: { args: 0, apply: (v) => text(v).toLowerCase() },
  title: { args: 0, apply: (v) => text(v).replace(/\b\w/g, (c) => c.toUpperCase()) },
  printf: { args: 1, apply: (v, [format]) => printf(String(format), v) },
};

const text = (value: unknown): string => (typeof value === 'number' ? formatNumber(value) : value === undefined ? '' : String(value));

/** Go's %v of a float64 as Prometheus prints `$value`: shortest round-trip, exponent past 1e21. */
export function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e21 || abs < 1e-4)) return value.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
  return String(value);
}

function formatG(value: number, digits: number): string {
  return Number.isFinite(value) ? String(Number(value.toPrecision(digits))) : formatNumber(value);
}

function humanize(value: number, base: number, up: string[], down: string[]): string {
  if (!Number.isFinite(value) || value === 0) return formatNumber(value);
  let v = value;
  let i = 0;
  if (Math.abs(v) >= 1) {
    while (Math.abs(v) >= base && i < up.length - 1) {
      v /= base;
      i += 1;
    }
    return `${formatG(v, 4)}${up[i]}`;
  }
  while (Math.abs(v) < 1 && i < down.length - 1) {
    v *= base;
    i += 1;
  }
  return `${formatG(v, 4)}${down[i]}`;
}

function humanizeDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return formatNumber(seconds);
  if (Math.abs(seconds) < 1) return seconds === 0 ? '0s' : `${formatG(seconds * 1000, 4)}ms`;
  const sign = seconds < 0 ? '-' : '';
  let rest = Math.abs(seconds);
  const days = Math.floor(rest / 86_400);
  rest -= days * 86_400;
  const hours = Math.floor(rest / 3_600);
  rest -= hours * 3_600;
  const minutes = Math.floor(rest / 60);
  rest -= minutes * 60;
  const parts = [days > 0 ? `${days}d ` : '', hours > 0 ? `${hours}h ` : '', minutes > 0 ? `${minutes}m ` : '', `${Math.floor(rest)}s`];
  return `${sign}${parts.join('')}`;
}

/** `%d %f %.Nf %e %g %s %v %q %%` — what rule annotations use of Go's printf. */
function printf(format: string, value: unknown): string {
  let used = false;
  return format.replace(/%(\.(\d+))?([dfegsvq%])/g, (_match, _p, precision: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    if (used) return '%!' + verb + '(MISSING)';
    used = true;
    const n = Number(value);
    switch (verb) {
      case 'd':
        return Number.isFinite(n) ? String(Math.trunc(n)) : formatNumber(n);
      case 'f':
        return Number.isFinite(n) ? n.toFixed(precision === undefined ? 6 : Number(precision)) : formatNumber(n);
      case 'e':
        return Number.isFinite(n) ? n.toExponential(precision === undefined ? 6 : Number(precision)).replace(/e([+-])(\d)$/, 'e$10$2') : formatNumber(n);
      case 'g':
        return precision === undefined ? text(value) : formatG(n, Number(precision));
      case 'q':
        return JSON.stringify(text(value));
      default:
        return text(value);
    }
  });
}

/** Parses `template`; throws a TemplateError at the offending offset. */
export function parseTemplate(template: string): Part[] {
  const parts: Part[] = [];
  let at = 0;
  while (at < template.length) {
    const open = template.indexOf('{{', at);
    if (open < 0) {
      parts.push({ kind: 'text', text: template.slice(at) });
      break;
    }
    if (open > at) parts.push({ kind: 'text', text: template.slice(at, open) });
    const close = template.indexOf('}}', open + 2);
    if (close < 0) throw new TemplateError(open, 'unclosed action: "{{" without "}}"');
    parts.push(parseAction(template.slice(open + 2, close), open + 2));
    at = close + 2;
  }
  return parts;
}

function parseAction(source: string, offset: number): Part {
  const tokens: { text: string; at: number }[] = [];
  const pattern = /"(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|]+/g;
  const trimmed = source.replace(/^-\s/, '  ').replace(/\s-$/, '  ');
  for (let m = pattern.exec(trimmed); m !== null; m = pattern.exec(trimmed)) tokens.push({ text: m[0], at: offset + m.index });
  if (tokens.length === 0) throw new TemplateError(offset, 'empty action "{{ }}"');
  const commands: { text: string; at: number }[][] = [[]];
  for (const token of tokens) {
    if (token.text === '|') commands.push([]);
    else commands.at(-1)!.push(token);
  }
  const [first, ...rest] = commands.map((command) => {
    if (command.length === 0) throw new TemplateError(offset, 'empty command in a pipeline');
    return command;
  });
  const head: Call | Arg = first!.length === 1 && !(first![0]!.text in FUNCTIONS) ? parseArg(first![0]!) : parseCall(first!, 0);
  return { kind: 'action', head, pipeline: rest.map((command) => parseCall(command, 1)) };
}

function parseCall(command: { text: string; at: number }[], piped: number): Call {
  const [name, ...args] = command;
  const func = FUNCTIONS[name!.text];
  if (func === undefined) throw new TemplateError(name!.at, `unknown function ${JSON.stringify(name!.text)} (known: ${Object.keys(FUNCTIONS).join(', ')})`);
  if (args.length + piped !== func.args + 1) {
    throw new TemplateError(name!.at, `${name!.text} takes ${func.args + 1} argument${func.args === 0 ? '' : 's'}, got ${args.length + piped}`);
  }
  return { func: name!.text, args: args.map(parseArg) };
}

function parseArg(token: { text: string; at: number }): Arg {
  const t = token.text;
  if (t.startsWith('"')) {
    try {
      return { kind: 'string', text: JSON.parse(t) as string };
    } catch {
      throw new TemplateError(token.at, `bad string ${t}`);
    }
  }
  if (t.startsWith('`')) return { kind: 'string', text: t.slice(1, -1) };
  if (/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(t)) return { kind: 'number', value: Number(t) };
  if (t === '$value' || t === '.Value') return { kind: 'value' };
  const labels = /^(?:\$labels|\.Labels)(?:\.([a-zA-Z_][a-zA-Z0-9_]*))?$/.exec(t);
  if (labels !== null) return labels[1] === undefined ? { kind: 'labels' } : { kind: 'labels', name: labels[1] };
  const external = /^(?:\$externalLabels|\.ExternalLabels)(?:\.([a-zA-Z_][a-zA-Z0-9_]*))?$/.exec(t);
  if (external !== null) return external[1] === undefined ? { kind: 'external' } : { kind: 'external', name: external[1] };
  throw new TemplateError(token.at, `unknown value ${JSON.stringify(t)} (use $labels.<name>, $value, $externalLabels.<name>, a "string" or a number)`);
}

function valueOf(arg: Arg, data: TemplateData): unknown {
  switch (arg.kind) {
    case 'labels':
      return arg.name === undefined ? mapText(data.labels) : (data.labels[arg.name] ?? '');
    case 'external':
      return arg.name === undefined ? mapText(data.externalLabels ?? {}) : (data.externalLabels?.[arg.name] ?? '');
    case 'value':
      return data.value;
    case 'string':
      return arg.text;
    case 'number':
      return arg.value;
  }
}

const mapText = (labels: Record<string, string>): string => `map[${Object.keys(labels).sort().map((k) => `${k}:${labels[k]}`).join(' ')}]`;

function call(c: Call, data: TemplateData, input?: unknown): string {
  const args = c.args.map((a) => valueOf(a, data));
  // As in Go, a piped value comes last: `printf "%.2f" $value` is `$value | printf "%.2f"`.
  const all = input === undefined ? args : [...args, input];
  return FUNCTIONS[c.func]!.apply(all.at(-1), all.slice(0, -1));
}

/** Renders a parsed template. */
export function renderTemplate(parts: Part[], data: TemplateData): string {
  let out = '';
  for (const part of parts) {
    if (part.kind === 'text') {
      out += part.text;
      continue;
    }
    let value: unknown = 'func' in part.head ? call(part.head, data) : valueOf(part.head, data);
    for (const step of part.pipeline) value = call(step, data, value);
    out += text(value);
  }
  return out;
}

/** Parses and renders in one go (for tests and one-off use). */
export function expandTemplate(template: string, data: TemplateData): string {
  return renderTemplate(parseTemplate(template), data);
}
