/**
 * A small structured logger. Lines go to stderr so that stdout stays for command output
 * (tables, JSON). `CRAFT_LOG=debug|info|warn|error|silent` sets the level.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(scope: string): Logger;
}

function envLevel(): LogLevel {
  const value = process.env.CRAFT_LOG;
  return value !== undefined && value in RANK ? (value as LogLevel) : 'info';
}

let globalLevel: LogLevel = envLevel();
export function setLogLevel(level: LogLevel): void {
  globalLevel = level;
}

export function currentLogLevel(): LogLevel {
  return globalLevel;
}

function render(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === 'string') return /\s/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}

export function createLogger(scope: string): Logger {
  const write = (level: LogLevel, message: string, fields?: Record<string, unknown>): void => {
    if (RANK[level] < RANK[globalLevel]) return;
    const extra = fields === undefined ? '' : ' ' + Object.entries(fields).map(([k, v]) => `${k}=${render(v)}`).join(' ');
    process.stderr.write(`${new Date().toISOString()} ${level.padEnd(5)} [${scope}] ${message}${extra}\n`);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (sub) => createLogger(`${scope}/${sub}`),
  };
}
