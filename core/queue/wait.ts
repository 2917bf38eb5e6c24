/**
 * How a queue log's reader waits for data: a waker in the partition's set, resolved by whoever
 * appends (or closes) or after `waitMs`, whichever comes first — and removed either way.
 */
export function waitForWake(waiters: Set<() => void>, waitMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, waitMs);
    function done(): void {
      clearTimeout(timer);
      waiters.delete(done);
      resolve();
    }
    waiters.add(done);
  });
}
