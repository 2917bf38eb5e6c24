/**
 * The PromQL functions the parser accepts, with Prometheus's signatures (promql/parser/functions.go).
 * The parser checks calls against this table; the evaluator implements each name.
 */
import type { ValueType } from './ast.js';

export interface FunctionSignature {
  /** Argument types in order; with `variadic` ≠ 0 the last one is optional and may repeat. */
  argTypes: ValueType[];
  /**
   * 0: exactly `argTypes.length` arguments. n > 0: at least `argTypes.length - 1`, at most
   * `argTypes.length - 1 + n`. -1: at least `argTypes.length - 1`, no maximum. Extra arguments
   * take the type of the last entry of `argTypes`.
   */
  variadic: number;
  returnType: ValueType;
}

const vectorToVector: FunctionSignature = { argTypes: ['vector'], variadic: 0, returnType: 'vector' };
const matrixToVector: FunctionSignature = { argTypes: ['matrix'], variadic: 0, returnType: 'vector' };
/** Date functions default to `vector(time())` when called without an argument. */
const optionalVectorToVector: FunctionSignature = { argTypes: ['vector'], variadic: 1, returnType: 'vector' };

export const FUNCTIONS: Readonly<Record<string, FunctionSignature>> = {
  abs: vectorToVector,
  absent: vectorToVector,
  absent_over_time: matrixToVector,
  acos: vectorToVector,
  acosh: vectorToVector,
  asin: vectorToVector,
  asinh: vectorToVector,
  atan: vectorToVector,
  atanh: vectorToVector,
  avg_over_time: matrixToVector,
  ceil: vectorToVector,
  changes: matrixToVector,
  clamp: { argTypes: ['vector', 'scalar', 'scalar'], variadic: 0, returnType: 'vector' },
  clamp_max: { argTypes: ['vector', 'scalar'], variadic: 0, returnType: 'vector' },
  clamp_min: { argTypes: ['vector', 'scalar'], variadic: 0, returnType: 'vector' },
  cos: vectorToVector,
  cosh: vectorToVector,
  count_over_time: matrixToVector,
  days_in_month: optionalVectorToVector,
  day_of_month: optionalVectorToVector,
  day_of_week: optionalVectorToVector,
  day_of_year: optionalVectorToVector,
  deg: vectorToVector,
  delta: matrixToVector,
  deriv: matrixToVector,
  // Prometheus 3 renamed holt_winters; both names are accepted here.
  double_exponential_smoothing: { argTypes: ['matrix', 'scalar', 'scalar'], variadic: 0, returnType: 'vector' },
  exp: vectorToVector,
  floor: vectorToVector,
  histogram_quantile: { argTypes: ['scalar', 'vector'], variadic: 0, returnType: 'vector' },
  holt_winters: { argTypes: ['matrix', 'scalar', 'scalar'], variadic: 0, returnType: 'vector' },
  hour: optionalVectorToVector,
  idelta: matrixToVector,
  increase: matrixToVector,
  irate: matrixToVector,
  label_join: { argTypes: ['vector', 'string', 'string', 'string'], variadic: -1, returnType: 'vector' },
  label_replace: { argTypes: ['vector', 'string', 'string', 'string', 'string'], variadic: 0, returnType: 'vector' },
  last_over_time: matrixToVector,
  ln: vectorToVector,
  log10: vectorToVector,
  log2: vectorToVector,
  mad_over_time: matrixToVector,
  max_over_time: matrixToVector,
  min_over_time: matrixToVector,
  minute: optionalVectorToVector,
  month: optionalVectorToVector,
  pi: { argTypes: [], variadic: 0, returnType: 'scalar' },
  predict_linear: { argTypes: ['matrix', 'scalar'], variadic: 0, returnType: 'vector' },
  present_over_time: matrixToVector,
  quantile_over_time: { argTypes: ['scalar', 'matrix'], variadic: 0, returnType: 'vector' },
  rad: vectorToVector,
  rate: matrixToVector,
  resets: matrixToVector,
  round: { argTypes: ['vector', 'scalar'], variadic: 1, returnType: 'vector' },
  scalar: { argTypes: ['vector'], variadic: 0, returnType: 'scalar' },
  sgn: vectorToVector,
  sin: vectorToVector,
  sinh: vectorToVector,
  sort: vectorToVector,
  sort_by_label: { argTypes: ['vector', 'string'], variadic: -1, returnType: 'vector' },
  sort_by_label_desc: { argTypes: ['vector', 'string'], variadic: -1, returnType: 'vector' },
  sort_desc: vectorToVector,
  sqrt: vectorToVector,
  stddev_over_time: matrixToVector,
  stdvar_over_time: matrixToVector,
  sum_over_time: matrixToVector,
  tan: vectorToVector,
  tanh: vectorToVector,
  time: { argTypes: [], variadic: 0, returnType: 'scalar' },
  timestamp: vectorToVector,
  vector: { argTypes: ['scalar'], variadic: 0, returnType: 'vector' },
  year: optionalVectorToVector,
};

/** The function's signature, or undefined for a name PromQL does not define. */
export function lookupFunction(name: string): FunctionSignature | undefined {
  return Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined;
}

/** Inclusive bounds on the argument count of a call. */
export function argumentCountRange(signature: FunctionSignature): { min: number; max: number } {
  const count = signature.argTypes.length;
  if (signature.variadic === 0) return { min: count, max: count };
  return { min: count - 1, max: signature.variadic < 0 ? Infinity : count - 1 + signature.variadic };
}
