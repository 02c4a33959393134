/** One-shot timers owned together, so an object can cancel every one it scheduled at once. */
export class TimerSet {
  private readonly timers = new Set<NodeJS.Timeout>();

  /** Runs `run` after `ms`, unless `clear` comes first. */
  later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, ms);
    this.timers.add(timer);
  }

  /** Cancels every timer not yet run. */
  clear(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}
