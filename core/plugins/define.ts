/**
 * What a plugin module exports: metadata and a factory for its slot's interface.
 */
import type { z } from 'zod';
import type { SlotName, SlotTypes } from '../slots/index.js';

export interface PluginMetadata<S extends SlotName = SlotName> {
  /** Globally unique, lower case: `<family>.<name>`, e.g. `ingestion.event-driven`. */
  id: string;
  /** Craft number 0–5 this phase belongs to. */
  craft: number;
  /** Phase within the craft (0 for Craft #0 and platform defaults). */
  phase: number;
  slot: S;
  /** Semantic version of the plugin. */
  version: string;
  /** One line: what this phase does differently. */
  summary: string;
  /** Whether the plugin keeps acknowledged data across a process crash. */
  durable?: boolean;
  /**
   * The options the plugin takes, as a schema; options that do not match are refused with
   * CRAFT_PLUGIN_OPTIONS naming the key, before anything starts. Without a schema the
   * plugin takes no options it cares about.
   */
  options?: z.ZodType<Record<string, unknown>, Record<string, unknown>>;
}

export interface PluginDefinition<S extends SlotName = SlotName> extends PluginMetadata<S> {
  /** Makes a fresh instance; options come from the configuration's plugin entry, already checked against `options`. */
  create(context: SlotTypes[S]['context'], options: Record<string, unknown>): SlotTypes[S]['instance'];
}

/**
 * Types a plugin definition by its slot and, when it declares an options schema, hands
 * `create` the options as that schema's output (the registry parses them before `create`).
 */
export function definePlugin<S extends SlotName, O extends Record<string, unknown> = Record<string, unknown>>(
  definition: Omit<PluginDefinition<S>, 'options' | 'create'> & {
    options?: z.ZodType<O, Record<string, unknown>>;
    create(context: SlotTypes[S]['context'], options: O): SlotTypes[S]['instance'];
  },
): PluginDefinition<S> {
  return definition as unknown as PluginDefinition<S>;
}
