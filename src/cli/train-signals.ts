// SIGINT and SIGTERM during `train`: noted, never acted on mid-step, so the loop can finish the step, save and draw; a second signal ends the process at once.

/** Signals the train loop stops at. */
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
export type StopSignal = (typeof SIGNALS)[number];

// The loop is synchronous: a signal's handler runs only when the loop lets the event loop turn.
// It does so at most every YIELD_MS (a setImmediate costs microseconds; a step of the seed model is ~12 µs).
const YIELD_MS = 50;

export class TrainingSignals {
  /** The first signal received, if any. */
  received: StopSignal | undefined;
  private last = performance.now();
  private readonly handlers = new Map<StopSignal, () => void>();

  constructor() {
    for (const sig of SIGNALS) {
      const h = () => {
        // A second signal while the run is saving: the user means it.
        if (this.received !== undefined) process.exit(130);
        this.received = sig;
      };
      this.handlers.set(sig, h);
      process.on(sig, h);
    }
  }

  /** Whether the run should stop before its next step (lets pending signals in every YIELD_MS). */
  async poll(): Promise<boolean> {
    const now = performance.now();
    if (now - this.last >= YIELD_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.last = performance.now();
    }
    return this.received !== undefined;
  }

  /** Stops listening: signals get their default behaviour back. */
  close(): void {
    for (const [sig, h] of this.handlers) process.off(sig, h);
    this.handlers.clear();
  }
}
