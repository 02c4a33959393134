/**
 * `watchConfigurations`: a compacted replay from the database followed by live events from the
 * in-process emitter. The listener is attached before the replay is read, and live events at or
 * below the last replayed seq are dropped, so nothing is lost or repeated at the seam.
 */
import type { ConfigurationEvent } from '../contract.ts';
import { replayEvents } from './configurations.ts';
import type { SqliteContext } from './context.ts';

/** Streams configuration events under the rules of `Store.watchConfigurations`. */
export async function* watchConfigurations(
  ctx: SqliteContext,
  options: { afterSeq: number; signal: AbortSignal },
): AsyncGenerator<ConfigurationEvent> {
  const { signal } = options;
  if (signal.aborted) return;
  const pending: ConfigurationEvent[] = [];
  let closed = false;
  let wake: (() => void) | undefined;
  const onEvent = (event: ConfigurationEvent): void => {
    pending.push(event);
    wake?.();
  };
  const onStop = (): void => {
    closed = true;
    wake?.();
  };
  ctx.events.on('event', onEvent);
  ctx.events.on('close', onStop);
  signal.addEventListener('abort', onStop);
  try {
    let last = options.afterSeq;
    for (const event of replayEvents(ctx.database, options.afterSeq)) {
      if (closed || signal.aborted) return;
      yield event;
      last = event.seq;
    }
    while (!closed && !signal.aborted) {
      const event = pending.shift();
      if (event === undefined) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      } else if (event.seq > last) {
        last = event.seq;
        yield event;
      }
    }
  } finally {
    ctx.events.off('event', onEvent);
    ctx.events.off('close', onStop);
    signal.removeEventListener('abort', onStop);
  }
}
