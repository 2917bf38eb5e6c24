/**
 * The closed vocabulary of slots. A slot is an interface a plugin implements, hosted by
 * one actor. Anything else named as a slot is an error.
 */
import type { IngestionServer, IngestionServerContext } from './ingestion.js';
import type { GroupCoordinator, GroupCoordinatorContext, QueueLog, QueueLogContext } from './queue.js';
import type { SampleStore, StorageContext } from './storage.js';
import type { KvContext, KvEngine } from './kv.js';
import type { QueryContext, QueryEvaluator } from './query.js';
import type { AlertDelivery, AlertEvaluator, AlertingContext, AlertLifecycle } from './alerting.js';

export interface SlotTypes {
  'ingestion.server': { context: IngestionServerContext; instance: IngestionServer };
  'queue.log': { context: QueueLogContext; instance: QueueLog };
  'queue.groups': { context: GroupCoordinatorContext; instance: GroupCoordinator };
  'storage.engine': { context: StorageContext; instance: SampleStore };
  'storage.kv': { context: KvContext; instance: KvEngine };
  'query.evaluator': { context: QueryContext; instance: QueryEvaluator };
  'alerting.evaluator': { context: AlertingContext; instance: AlertEvaluator };
  'alerting.lifecycle': { context: AlertingContext; instance: AlertLifecycle };
  'alerting.delivery': { context: AlertingContext; instance: AlertDelivery };
}

export type SlotName = keyof SlotTypes;

/** Each slot: the actor that hosts it and the methods an instance must have. */
export const SLOTS = {
  'ingestion.server': { owner: 'ingestion', methods: ['start', 'accept', 'drain', 'stats'] },
  'queue.log': { owner: 'queue', methods: ['open', 'append', 'lastOffset', 'reader', 'trim', 'info', 'close'] },
  'queue.groups': { owner: 'queue', methods: ['restore', 'join', 'heartbeat', 'leave', 'tick', 'fence', 'consumable', 'describe', 'groups'] },
  'storage.engine': { owner: 'storage', methods: ['open', 'appender', 'querier', 'positions', 'deleteSeries', 'scan', 'stats', 'cardinality', 'flush', 'close'] },
  'storage.kv': { owner: 'storage', methods: ['open', 'get', 'getMany', 'iterate', 'batch', 'snapshot', 'bytesOnDisk', 'compactAll', 'close'] },
  'query.evaluator': { owner: 'query', methods: ['evaluate'] },
  'alerting.evaluator': { owner: 'alerting', methods: ['rules', 'evaluate'] },
  'alerting.lifecycle': { owner: 'alerting', methods: ['initialState', 'fold', 'start', 'observe', 'receive', 'alerts', 'records', 'silences', 'silence', 'expireSilence', 'stop'] },
  'alerting.delivery': { owner: 'notifier', methods: ['channels', 'admit', 'send', 'backoffMs', 'stats', 'close'] },
} as const satisfies Record<SlotName, { owner: string; methods: readonly string[] }>;

export const SLOT_NAMES = Object.keys(SLOTS) as SlotName[];

export const isSlotName = (name: string): name is SlotName => Object.hasOwn(SLOTS, name);

export type { IngestionServer, IngestionServerContext } from './ingestion.js';
export type { QueueLog, QueueLogContext, GroupCoordinator, GroupCoordinatorContext } from './queue.js';
export type { SampleStore, StorageContext } from './storage.js';
export type { KvEngine, KvContext, KvOp, KvRange, KvEntry, KvSnapshot, KvReader } from './kv.js';
export type { QueryEvaluator, QueryContext } from './query.js';
export type { AlertDelivery, AlertEvaluator, AlertingContext, AlertLifecycle } from './alerting.js';
