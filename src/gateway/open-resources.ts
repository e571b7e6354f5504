/**
 * What a gateway opened (connections, timers, the span exporter), to be
 * closed in the reverse order: each step runs even when an earlier one
 * throws, and a start-up that fails half-way closes what it had opened
 * instead of leaving connections and timers behind.
 */
export class OpenResources {
  private readonly closers: (() => unknown)[] = [];

  /** Registers how to close something just opened. */
  add(close: () => unknown): void {
    this.closers.push(close);
  }

  /** Closes everything, last opened first; rethrows the first failure once every step has run. */
  async close(): Promise<void> {
    let failure: { error: unknown } | undefined;
    for (const close of this.closers.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure !== undefined) throw failure.error;
  }
}
