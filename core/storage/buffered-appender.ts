/**
 * The appender every store gives out: it buffers the transaction's samples (the store sees
 * nothing before `commit`) and hands them to the store's own commit in one piece. It gives no
 * series references (`append` returns 0): the stores using it find series by labels at commit.
 */
import type { WireSample } from '../model.js';
import type { AppendResult, Appender, QueuePositions } from '../slots/storage.js';

export function bufferedAppender(commit: (samples: WireSample[], positions: QueuePositions) => Promise<AppendResult>): Appender {
  const pending: WireSample[] = [];
  return {
    append: (labels, timestampMs, value, serverStamped) => {
      pending.push(serverStamped === true ? [labels, timestampMs, value, 1] : [labels, timestampMs, value]);
      return 0;
    },
    commit: (positions) => commit(pending.splice(0), positions),
    rollback: () => {
      pending.length = 0;
    },
  };
}
