/**
 * Work that outlives the request that started it (saving a built graph to the
 * cache). The worker lets it finish, within a bound, before it exits, so a
 * short CLI run still leaves a usable cache behind.
 */
const pending = new Set<Promise<unknown>>();

export function inBackground<T>(p: Promise<T>): Promise<T> {
  const tracked = p.finally(() => pending.delete(tracked));
  tracked.catch(() => undefined);
  pending.add(tracked);
  return p;
}

/** Resolves when every background task has settled, or after `timeoutMs`. */
export async function settleBackground(timeoutMs: number): Promise<void> {
  if (!pending.size) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled([...pending]),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
}
