/**
 * The plugin registry: discovers plugin modules (`*.plugin.js` under plugins/), checks
 * them in a fixed order — shape, slot, duplicate id — and answers lookups. Errors are
 * coded and name the plugin and the file.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CraftError } from '../errors.js';
import { SLOTS, isSlotName, type SlotName, type SlotTypes } from '../slots/index.js';
import type { PluginDefinition, PluginMetadata } from './define.js';

const ID_PATTERN = /^[a-z0-9]+(?:[-.][a-z0-9]+)*$/;
const VERSION_PATTERN = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/;
const SUMMARY_LENGTH_MAX = 160;

/** The directory the compiled plugins live in (dist/plugins next to dist/core). */
export const PLUGINS_DIR = fileURLToPath(new URL('../../plugins/', import.meta.url));

export interface RegistryLoadResult {
  registry: PluginRegistry;
  errors: CraftError[];
}

function listPluginFiles(dir: string): string[] {
  const files: string[] = [];
  const walk = (current: string): void => {
    for (const name of readdirSync(current).sort()) {
      const path = join(current, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.plugin.js')) files.push(path);
    }
  };
  walk(dir);
  return files;
}

/** Checks one exported value; returns the coded problem or undefined when valid. */
export function validatePluginShape(value: unknown, source: string): CraftError | undefined {
  const fail = (why: string): CraftError =>
    new CraftError('CRAFT_PLUGIN_SHAPE', `${source}: ${why}`, { details: { source } });
  if (typeof value !== 'object' || value === null) return fail('default export is not an object');
  const p = value as Record<string, unknown>;
  if (typeof p.id !== 'string' || !ID_PATTERN.test(p.id)) return fail(`id ${JSON.stringify(p.id)} must be lower-case words joined by "." or "-"`);
  const name = `plugin ${p.id}`;
  if (typeof p.craft !== 'number' || !Number.isInteger(p.craft) || p.craft < 0 || p.craft > 5) return fail(`${name}: craft must be an integer 0–5`);
  if (typeof p.phase !== 'number' || !Number.isInteger(p.phase) || p.phase < 0) return fail(`${name}: phase must be a non-negative integer`);
  if (typeof p.slot !== 'string') return fail(`${name}: slot must be a string`);
  if (typeof p.version !== 'string' || !VERSION_PATTERN.test(p.version)) return fail(`${name}: version must be semver (x.y.z)`);
  if (typeof p.summary !== 'string' || p.summary.trim() === '' || p.summary.length > SUMMARY_LENGTH_MAX || p.summary.includes('\n')) {
    return fail(`${name}: summary must be one line of 1–${SUMMARY_LENGTH_MAX} characters`);
  }
  if (typeof p.create !== 'function') return fail(`${name}: create must be a function`);
  if (p.options !== undefined && typeof (p.options as { safeParse?: unknown }).safeParse !== 'function') return fail(`${name}: options must be a schema (zod)`);
  if (!isSlotName(p.slot)) {
    return new CraftError('CRAFT_PLUGIN_SLOT_UNKNOWN', `${source}: plugin ${p.id} names slot "${p.slot}"; slots are ${Object.keys(SLOTS).join(', ')}`, {
      details: { source, slot: p.slot },
    });
  }
  return undefined;
}

export class PluginRegistry {
  private readonly byId = new Map<string, PluginDefinition>();

  /** Registers a definition after validation; throws the coded error on failure. */
  register(value: unknown, source = 'inline'): PluginDefinition {
    const problem = validatePluginShape(value, source);
    if (problem !== undefined) throw problem;
    const definition = value as PluginDefinition;
    if (this.byId.has(definition.id)) {
      throw new CraftError('CRAFT_PLUGIN_DUPLICATE', `${source}: plugin id ${definition.id} is already registered`, { details: { source, id: definition.id } });
    }
    this.byId.set(definition.id, definition);
    return definition;
  }

  /** Discovers and registers every `*.plugin.js` under `dir`; collects errors instead of stopping. */
  static async load(dir: string = PLUGINS_DIR): Promise<RegistryLoadResult> {
    const registry = new PluginRegistry();
    const errors: CraftError[] = [];
    for (const file of listPluginFiles(dir)) {
      const source = relative(process.cwd(), file) || file;
      try {
        const module = (await import(pathToFileURL(file).href)) as { default?: unknown };
        registry.register(module.default, source);
      } catch (error) {
        errors.push(error instanceof CraftError ? error : new CraftError('CRAFT_PLUGIN_SHAPE', `${source}: ${(error as Error).message}`, { cause: error }));
      }
    }
    return { registry, errors };
  }

  list(): PluginMetadata[] {
    return [...this.byId.values()]
      .map(({ id, craft, phase, slot, version, summary, durable }) => ({ id, craft, phase, slot, version, summary, durable: durable ?? false }))
      .sort((a, b) => a.craft - b.craft || a.slot.localeCompare(b.slot) || a.phase - b.phase || a.id.localeCompare(b.id));
  }

  get(id: string): PluginDefinition | undefined {
    return this.byId.get(id);
  }

  /** The plugin for a slot, or the coded reason it cannot be used there. */
  resolve<S extends SlotName>(slot: S, id: string): PluginDefinition<S> {
    const definition = this.byId.get(id);
    if (definition === undefined) {
      const candidates = this.list().filter((p) => p.slot === slot).map((p) => p.id);
      throw new CraftError('CRAFT_PLUGIN_UNKNOWN', `no plugin "${id}"; for slot ${slot} choose one of: ${candidates.join(', ')}`, { details: { id, slot } });
    }
    if (definition.slot !== slot) {
      throw new CraftError('CRAFT_PLUGIN_WRONG_SLOT', `plugin ${id} fills slot ${definition.slot}, not ${slot}`, { details: { id, slot } });
    }
    return definition as PluginDefinition<S>;
  }

  /** The options checked against the plugin's schema (with its defaults), or CRAFT_PLUGIN_OPTIONS naming the key. */
  checkOptions<S extends SlotName>(slot: S, id: string, options: Record<string, unknown> = {}): Record<string, unknown> {
    const definition = this.resolve(slot, id);
    if (definition.options === undefined) return options;
    const parsed = definition.options.safeParse(options);
    if (parsed.success) return parsed.data;
    const problems = parsed.error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(options)'}: ${issue.message}`);
    throw new CraftError('CRAFT_PLUGIN_OPTIONS', `plugin ${id}: ${problems.join('; ')}`, { details: { id, slot, problems } });
  }

  /** Creates an instance (options checked first) and checks it has the slot's methods. */
  instantiate<S extends SlotName>(slot: S, id: string, context: SlotTypes[S]['context'], options: Record<string, unknown> = {}): SlotTypes[S]['instance'] {
    const definition = this.resolve(slot, id);
    const instance = definition.create(context, this.checkOptions(slot, id, options)) as unknown as Record<string, unknown>;
    const missing = SLOTS[slot].methods.filter((m) => typeof instance[m] !== 'function');
    if (missing.length > 0) {
      throw new CraftError('CRAFT_PLUGIN_SHAPE', `plugin ${id} made an instance without ${missing.join(', ')} for slot ${slot}`, { details: { id, slot, missing } });
    }
    return instance as unknown as SlotTypes[S]['instance'];
  }
}
