/**
 * Runs tasks with bounded concurrency and yields their results in task order,
 * each as soon as it and every task before it have finished. A failure is
 * thrown when its turn comes (after the results before it), and stopping the
 * iteration early (an error, or the consumer going away) aborts the tasks
 * still running through the signal each task receives.
 */
export async function* orderedPool<T>(
  count: number,
  concurrency: number,
  run: (index: number, signal: AbortSignal) => Promise<T>,
  parent?: AbortSignal,
): AsyncGenerator<T> {
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(parent?.reason);
  if (parent?.aborted) controller.abort(parent.reason);
  else parent?.addEventListener("abort", onParentAbort, { once: true });

  const results: Promise<T>[] = [];
  let next = 0;
  const launch = () => {
    while (next < count && next - finished < concurrency) {
      const index = next++;
      const p = run(index, controller.signal);
      results[index] = p;
      p.then(onSettled, onSettled);
    }
  };
  let finished = 0;
  const onSettled = () => {
    finished++;
    if (!controller.signal.aborted) launch();
  };
  try {
    launch();
    for (let i = 0; i < count; i++) {
      yield await results[i]!;
    }
  } finally {
    controller.abort();
    parent?.removeEventListener("abort", onParentAbort);
    // Tasks aborted above reject; nobody awaits them any more.
    for (const p of results) p?.catch(() => {});
  }
}
