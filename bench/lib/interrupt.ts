/** Ctrl-C (or SIGTERM) during a benchmark: stop what it started, remove its temp dir, exit 130. */

/** Runs `cleanUp` once on SIGINT or SIGTERM, says what it did, and exits with status 130. */
export function onInterrupt(what: string, cleanUp: () => void | Promise<void>): void {
  const interrupted = (signal: NodeJS.Signals): void => {
    console.error(`\ninterrupted by ${signal}; ${what}`);
    void Promise.resolve().then(cleanUp).finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
}
