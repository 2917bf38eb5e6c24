/**
 * Anomaly detection in rules, as functions of the rule language that expand to PromQL before the
 * query engine sees them (so they run on every query phase and `EXPLAIN` shows what runs):
 *
 *   zscore(e, 1h)          (e − mean of e over 1h) / standard deviation of e over 1h
 *   madscore(e, 1h)        |e − median of e over 1h| / median absolute deviation of e over 1h
 *                          (robust to the outliers it looks for)
 *   forecast_error(e, 1h, 0.3, 0.3)
 *                          |e − a Holt (double exponential smoothing) forecast of e over 1h,
 *                          smoothing 0.3, trend 0.3| / standard deviation of e over 1h
 *
 * Each is a score: a rule compares it with a threshold, `zscore(rate(errors[5m]), 1h) > 3`.
 * The window is a subquery (`(e)[1h:]`) at the query engine's default step. A band that is flat
 * (deviation 0) gives ±Inf or NaN: a constant series that jumps scores +Inf and fires.
 */

const FUNCTIONS: Record<string, { args: number; expand: (e: string, window: string, rest: string[]) => string }> = {
  zscore: { args: 2, expand: (e, w) => `((${e}) - avg_over_time((${e})[${w}:])) / stddev_over_time((${e})[${w}:])` },
  madscore: { args: 2, expand: (e, w) => `abs((${e}) - quantile_over_time(0.5, (${e})[${w}:])) / mad_over_time((${e})[${w}:])` },
  forecast_error: {
    args: 4,
    expand: (e, w, [smoothing, trend]) => `abs((${e}) - double_exponential_smoothing((${e})[${w}:], ${smoothing}, ${trend})) / stddev_over_time((${e})[${w}:])`,
  },
};

const DURATION = /^\d+(ms|s|m|h|d|w|y)(\d+(ms|s|m|h|d|w|y))*$/;

/** Splits `text` from `open` (an opening parenthesis) into its top-level arguments; returns them and the closing index. */
function callArguments(text: string, open: number): { args: string[]; close: number } {
  const args: string[] = [];
  let depth = 0;
  let start = open + 1;
  for (let i = open; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'" || c === '`') {
      const end = text.indexOf(c, i + 1);
      i = end < 0 ? text.length : end;
      continue;
    }
    if (c === '(' || c === '[' || c === '{') depth += 1;
    else if (c === ')' || c === ']' || c === '}') {
      depth -= 1;
      if (depth === 0) {
        args.push(text.slice(start, i).trim());
        return { args, close: i };
      }
    } else if (c === ',' && depth === 1) {
      args.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  throw new Error(`unclosed "(" in ${JSON.stringify(text.slice(0, open))}…`);
}

/** Expands every anomaly function in `text` (innermost arguments first); other text is left as it is. */
export function desugarAnomaly(text: string): string {
  const call = /(^|[^a-zA-Z0-9_:])(zscore|madscore|forecast_error)\s*\(/g;
  for (let m = call.exec(text); m !== null; m = call.exec(text)) {
    const name = m[2]!;
    const open = m.index + m[0].length - 1;
    const { args, close } = callArguments(text, open);
    const spec = FUNCTIONS[name]!;
    if (args.length !== spec.args) throw new Error(`${name} takes ${spec.args} arguments (${name === 'forecast_error' ? 'expression, window, smoothing, trend' : 'expression, window'}), got ${args.length}`);
    const [expr, window, ...rest] = args.map(desugarAnomaly);
    if (!DURATION.test(window!)) throw new Error(`${name}: the window must be a duration such as 1h or 30m, got ${JSON.stringify(window)}`);
    const expanded = `(${spec.expand(expr!, window!, rest)})`;
    const start = m.index + m[1]!.length;
    return desugarAnomaly(text.slice(0, start) + expanded + text.slice(close + 1));
  }
  return text;
}
