/**
 * Every error code the platform raises, with its meaning and how to fix it. The table in
 * docs/errors.md is generated from this registry (`craft errors --markdown`), so the two
 * cannot drift apart.
 */
export const ERROR_CODES = {
  CRAFT_CONFIG_INVALID: {
    message: 'configuration is invalid',
    fix: 'Correct the key named in the message at the file and line given.',
  },
  CRAFT_SCENARIO_INVALID: {
    message: 'scenario file is invalid',
    fix: 'Correct the key named in the message at the file and line given.',
  },
  CRAFT_PLUGIN_SHAPE: {
    message: 'plugin module does not export a valid plugin',
    fix: 'Export `default definePlugin({...})` with id, craft, phase, slot, version, summary and create().',
  },
  CRAFT_PLUGIN_DUPLICATE: {
    message: 'two plugins share one id',
    fix: 'Rename one of them; ids are global.',
  },
  CRAFT_PLUGIN_SLOT_UNKNOWN: {
    message: 'plugin names a slot that does not exist',
    fix: 'Use one of the slots listed by `craft plugins`.',
  },
  CRAFT_PLUGIN_UNKNOWN: {
    message: 'no plugin with this id is registered',
    fix: 'Pick an id from `craft plugins`.',
  },
  CRAFT_PLUGIN_OPTIONS: {
    message: 'plugin options are invalid',
    fix: 'Correct the option named in the message (plugin entry `{ id, options }` in the configuration, or `craft swap --options`).',
  },
  CRAFT_PLUGIN_WRONG_SLOT: {
    message: 'plugin belongs to another slot',
    fix: 'Swap it into the slot it declares.',
  },
  CRAFT_SLOT_NOT_HOSTED: {
    message: 'no running actor owns this slot',
    fix: 'Start the actor that owns the slot (see `craft status`).',
  },
  CRAFT_SWAP_FAILED: {
    message: 'hot swap failed; the previous plugin stays active',
    fix: 'Read the cause; the platform is unchanged.',
  },
  CRAFT_OVERLOADED: {
    message: 'mailbox or buffer is full',
    fix: 'Retry after the interval given; the limit is named in the message.',
  },
  CRAFT_TIMEOUT: {
    message: 'no reply within the deadline',
    fix: 'Check that the target actor is running (`craft status`).',
  },
  CRAFT_NO_RESPONDERS: {
    message: 'nobody listens on the subject',
    fix: 'Start the actor that serves it, or check --nats.',
  },
  CRAFT_NATS_SERVER_MISSING: {
    message: 'nats-server binary not found',
    fix: 'Run `bash scripts/ensure-nats-server.sh`, or set NATS_SERVER_BIN, or pass --nats URL.',
  },
  CRAFT_NATS_SERVER_START: {
    message: 'embedded nats-server did not start',
    fix: 'Read the server log quoted in the message.',
  },
  CRAFT_PLATFORM_NOT_RUNNING: {
    message: 'no running platform found',
    fix: 'Start one with `craft up`, or pass --nats URL of a running one (and --nats-creds FILE when its server wants credentials).',
  },
  CRAFT_BAD_REQUEST: {
    message: 'request is malformed',
    fix: 'Send the body the subject documents.',
  },
  CRAFT_NOT_FOUND: {
    message: 'no such object',
    fix: 'List what exists first (e.g. `craft silence list`) and use one of its ids.',
  },
  CRAFT_ACTOR_CRASHED: {
    message: 'actor crashed',
    fix: 'Its supervisor restarts it; see `craft status` for restarts.',
  },
  CRAFT_INVARIANT: {
    message: 'an internal invariant was broken',
    fix: 'This is a bug; the actor is restarted by its supervisor. Please report it.',
  },
  CRAFT_FAULT_INJECTION_DISABLED: {
    message: 'fault injection is disabled',
    fix: 'Enable `faults: true` in the configuration (scenarios do this).',
  },
  CRAFT_STORE_CORRUPT: {
    message: 'store file is corrupt beyond its last complete record',
    fix: 'The torn tail is ignored and rewritten; nothing acknowledged is lost because the queue replays it.',
  },
  CRAFT_QUERY_PARSE: {
    message: 'query is not valid PromQL',
    fix: 'Correct the query at the line:column the message gives; it names what was unexpected and what was expected.',
  },
  CRAFT_QUERY_EXECUTION: {
    message: 'query could not be evaluated',
    fix: 'Read the message (e.g. many-to-many matching, duplicate label sets, a bad function argument) and change the query; HTTP answers 422.',
  },
  CRAFT_QUERY_LIMIT: {
    message: 'query would exceed a limit',
    fix: 'Narrow the selectors or the time range, or raise the step; the limit (samples, series or points per series) is named in the message.',
  },
  CRAFT_QUERY_TIMEOUT: {
    message: 'query took longer than its timeout',
    fix: 'Narrow the query, or pass a longer `timeout` (the query API default is 2 minutes); HTTP answers 503.',
  },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error the platform expects and answers; `code` is stable, `message` is for people. */
export class CraftError extends Error {
  override readonly name: string = 'CraftError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message ?? ERROR_CODES[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/** A broken invariant: a bug. Thrown inside an actor, it crashes the actor and its supervisor restarts it. */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

/** Asserts an invariant; a false condition is a bug, never bad input. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}

/** The wire form of an error in a NATS reply. */
export interface WireError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export function toWireError(error: unknown): WireError {
  if (error instanceof CraftError) return error.toJSON();
  if (error instanceof Error) return { code: 'CRAFT_ACTOR_CRASHED', message: error.message };
  return { code: 'CRAFT_ACTOR_CRASHED', message: String(error) };
}

export function fromWireError(wire: WireError): CraftError {
  const code = (wire.code in ERROR_CODES ? wire.code : 'CRAFT_ACTOR_CRASHED') as ErrorCode;
  return new CraftError(code, wire.message, wire.details === undefined ? undefined : { details: wire.details });
}

/** Renders the error table for docs/errors.md. */
export function errorTableMarkdown(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, { message, fix }]) => `| \`${code}\` | ${message} | ${fix} |`);
  return ['| code | meaning | how to fix |', '|---|---|---|', ...rows].join('\n') + '\n';
}
