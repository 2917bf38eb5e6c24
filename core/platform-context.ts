/**
 * What every actor of a process is built with: the bus, the configuration, the plugin
 * registry, and where to write. Actors still talk to each other only over the bus; this is
 * process-level equipment, not shared actor state.
 */
import type { PlatformConfig } from './config/schema.js';
import { actorsHere, pluginFor } from './config/schema.js';
import type { PluginRegistry } from './plugins/registry.js';
import type { SlotName } from './slots/index.js';
import type { ActorEnvironment } from './actor/actor.js';
import { SUBJECTS } from './subjects.js';
import { CraftError } from './errors.js';
import { sleep } from './clock.js';
import type { NatsIdentity } from './nats/credentials.js';

export interface PlatformContext extends ActorEnvironment {
  config: PlatformConfig;
  registry: PluginRegistry;
  /** Absolute data directory of the platform. */
  dataDir: string;
  /** NATS servers URL, for helper processes. */
  natsServers: string;
  /** The identity this actor's connections use: helper processes it starts connect with it too. */
  natsIdentity: NatsIdentity;
}

export interface PluginChoiceResolved {
  id: string;
  options: Record<string, unknown>;
}

/**
 * The plugin a slot should run now: the control actor's journaled choice (which remembers
 * swaps across restarts), else the configuration when no control actor answers in time.
 */
export async function currentChoice(context: PlatformContext, slot: SlotName): Promise<PluginChoiceResolved> {
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      const choices = await context.bus.request<Record<string, PluginChoiceResolved>>(SUBJECTS.controlChoices, {}, { timeoutMs: 2_000 });
      const choice = choices[slot];
      if (choice !== undefined) return choice;
      break;
    } catch (error) {
      if (!(error instanceof CraftError) || (error.code !== 'CRAFT_NO_RESPONDERS' && error.code !== 'CRAFT_TIMEOUT' && error.code !== 'CRAFT_OVERLOADED')) throw error;
      if (!actorsHere(context.config).includes('control') && attempt < 9) {
        await sleep(200);
        continue;
      }
      break;
    }
  }
  return pluginFor(context.config, slot);
}

/** A swap request as the control actor sends it to the owning actor. */
export interface HandoverRequest {
  slot: SlotName;
  plugin: string;
  options: Record<string, unknown>;
}

export interface HandoverReply {
  slot: SlotName;
  from: string;
  to: string;
  tookMs: number;
  /** What was handed over, in the owner's words (e.g. samples copied). */
  detail: string;
}
