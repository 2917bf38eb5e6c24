/**
 * The control actor: the platform's memory of which plugin fills each slot. Its journal
 * holds two kinds of events — `configured` (what the configuration asked for at start) and
 * `swapped` (a hot swap) — and the current choice of a slot is the last event for it. So
 * a restarted platform comes back with the plugins it had, unless its configuration
 * changed, in which case the new configuration wins.
 *
 * A swap request is validated here, carried out by the slot's owning actor (over
 * `craft.control.handover.<actor>`), and journaled only when the owner reports success.
 */
import { Actor } from '../core/actor/actor.js';
import { CraftError } from '../core/errors.js';
import { Journal } from '../core/journal/journal.js';
import { SUBJECTS, handoverSubject } from '../core/subjects.js';
import { pluginFor } from '../core/config/schema.js';
import { SLOTS, SLOT_NAMES, isSlotName, type SlotName } from '../core/slots/index.js';
import type { HandoverReply, HandoverRequest, PlatformContext, PluginChoiceResolved } from '../core/platform-context.js';

/** A swap may copy a whole store; give the owner time. */
const HANDOVER_TIMEOUT_MS = 10 * 60_000;

export interface ControlChoice extends PluginChoiceResolved {
  source: 'configured' | 'swapped';
  atMs: number;
}

export interface ControlState {
  choices: Partial<Record<SlotName, ControlChoice>>;
  /** What the configuration said last time, per slot, to notice when it changes. */
  configured: Partial<Record<SlotName, PluginChoiceResolved>>;
  swaps: number;
}

export type ControlEvent =
  | { type: 'configured'; slot: SlotName; plugin: string; options: Record<string, unknown>; atMs: number }
  | { type: 'swapped'; slot: SlotName; plugin: string; options: Record<string, unknown>; from: string; atMs: number };

export function applyControlEvent(state: ControlState, event: ControlEvent): ControlState {
  const choice: ControlChoice = { id: event.plugin, options: event.options, source: event.type, atMs: event.atMs };
  return {
    choices: { ...state.choices, [event.slot]: choice },
    configured: event.type === 'configured' ? { ...state.configured, [event.slot]: { id: event.plugin, options: event.options } } : state.configured,
    swaps: state.swaps + (event.type === 'swapped' ? 1 : 0),
  };
}

export interface SwapRequest {
  slot: string;
  plugin: string;
  options?: Record<string, unknown>;
}

const sameChoice = (a: PluginChoiceResolved | undefined, b: PluginChoiceResolved): boolean =>
  a !== undefined && a.id === b.id && JSON.stringify(a.options) === JSON.stringify(b.options);

export class ControlActor extends Actor {
  private journal!: Journal<ControlState, ControlEvent>;

  constructor(private readonly context: PlatformContext) {
    super('control', context);
    this.handle(SUBJECTS.controlChoices, () => this.choices(), { concurrency: 16 });
    this.handle(SUBJECTS.controlSwap, (body: SwapRequest) => this.swap(body));
  }

  protected override async onStart(): Promise<void> {
    this.journal = await Journal.open<ControlState, ControlEvent>(this.bus, {
      name: 'control',
      replicas: this.context.config.nats.replicas,
      initial: () => ({ choices: {}, configured: {}, swaps: 0 }),
      apply: applyControlEvent,
    });
    for (const slot of SLOT_NAMES) {
      const wanted = pluginFor(this.context.config, slot);
      if (!sameChoice(this.journal.state.configured[slot], wanted)) {
        // Fail early, naming the slot, if the configuration names a plugin that does not exist.
        this.context.registry.checkOptions(slot, wanted.id, wanted.options);
        await this.journal.append({ type: 'configured', slot, plugin: wanted.id, options: wanted.options, atMs: this.clock.now() });
      }
    }
  }

  private choices(): Record<string, ControlChoice> {
    return this.journal.state.choices as Record<string, ControlChoice>;
  }

  private async swap(request: SwapRequest): Promise<HandoverReply> {
    if (typeof request.slot !== 'string' || !isSlotName(request.slot)) {
      throw new CraftError('CRAFT_PLUGIN_SLOT_UNKNOWN', `no slot "${String(request.slot)}"; slots are ${SLOT_NAMES.join(', ')}`);
    }
    const slot = request.slot;
    const options = request.options ?? {};
    this.context.registry.checkOptions(slot, request.plugin, options);
    const current = this.journal.state.choices[slot];
    if (current !== undefined && current.id === request.plugin && JSON.stringify(current.options) === JSON.stringify(options)) {
      throw new CraftError('CRAFT_SWAP_FAILED', `${request.plugin} already fills ${slot}`);
    }
    const owner = SLOTS[slot].owner;
    const handover: HandoverRequest = { slot, plugin: request.plugin, options };
    let reply: HandoverReply;
    try {
      reply = await this.bus.request<HandoverReply>(handoverSubject(owner), handover, { timeoutMs: HANDOVER_TIMEOUT_MS });
    } catch (error) {
      if (error instanceof CraftError && error.code === 'CRAFT_NO_RESPONDERS') {
        throw new CraftError('CRAFT_SLOT_NOT_HOSTED', `actor ${owner}, which owns ${slot}, is not running`, { cause: error });
      }
      if (error instanceof CraftError && error.code === 'CRAFT_SWAP_FAILED') throw error;
      throw new CraftError('CRAFT_SWAP_FAILED', `${owner} could not swap ${slot} to ${request.plugin}: ${(error as Error).message}`, { cause: error });
    }
    await this.journal.append({ type: 'swapped', slot, plugin: request.plugin, options, from: reply.from, atMs: this.clock.now() });
    this.log.info('swapped', { slot, from: reply.from, to: request.plugin, tookMs: reply.tookMs });
    return reply;
  }
}
