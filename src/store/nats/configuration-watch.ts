/**
 * `watchConfigurations` on the ledger. One ephemeral consumer over `cfg.>` with
 * DeliverLastPerSubject is the whole mechanism: it first delivers the newest message of every
 * configuration (the compacted replay; older ones are skipped by seq) and then every message
 * appended after it was created, from the same server-side cursor, so the seam between replay
 * and live events has no gap and no duplicate. If the consumer is lost (a server restart, a
 * reconnect, a reader too slow for its idle timeout), a new one resumes after the last delivered
 * seq: exactly a reader resuming, which the contract defines as a compacted replay.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DeliverPolicy } from '@nats-io/jetstream';
import type { ConfigurationEvent } from '../contract.ts';
import { eventFrom } from './configuration-reads.ts';
import type { NatsContext } from './context.ts';
import { ledgerSubject } from './ledger.ts';
import { ephemeralConsumer, lastSeq } from './stream-reads.ts';

/** Streams configuration events under the rules of `Store.watchConfigurations`. */
export async function* watchConfigurations(ctx: NatsContext, options: { afterSeq: number; signal: AbortSignal }): AsyncGenerator<ConfigurationEvent> {
  const signal = AbortSignal.any([options.signal, ctx.closing]);
  const stopped = (): boolean => signal.aborted;
  if (stopped()) return;
  const stream = ctx.layout.ledger.stream;
  // A reader starting from nothing has nothing to remove: deletions that existed when it started are not replayed.
  const skipDeletesUpTo = options.afterSeq === 0 ? await lastSeq(ctx, stream) : 0;
  let last = options.afterSeq;
  let failures = 0;
  while (!stopped()) {
    let name: string | undefined;
    let stop: (() => void) | undefined;
    const onStop = (): void => stop?.();
    signal.addEventListener('abort', onStop);
    try {
      const info = await ctx.jsm.consumers.add(stream, {
        ...ephemeralConsumer(ledgerSubject.allConfigurations(ctx)),
        deliver_policy: DeliverPolicy.LastPerSubject,
        inactive_threshold: 300_000_000_000,
      });
      name = info.name;
      const consumer = await ctx.js.consumers.get(stream, info.name);
      const messages = await consumer.consume({ max_messages: 256 });
      stop = () => messages.stop();
      if (stopped()) messages.stop();
      void (async () => {
        for await (const status of messages.status()) {
          const lost = status.type === 'consumer_deleted' || status.type === 'consumer_not_found' || status.type === 'stream_not_found'
            || (status.type === 'heartbeats_missed' && status.count >= 2);
          if (lost) messages.stop();
        }
      })().catch(() => undefined);
      for await (const message of messages) {
        failures = 0;
        if (message.seq <= last) continue;
        last = message.seq;
        const event = eventFrom(ctx, { seq: message.seq, subject: message.subject, data: message.data, header: message.headers, time: message.time });
        if (event.type === 'delete' && event.seq <= skipDeletesUpTo) continue;
        yield event;
        if (stopped()) break;
      }
    } catch {
      failures += 1;
    } finally {
      signal.removeEventListener('abort', onStop);
      stop?.();
      if (name !== undefined && !ctx.closing.aborted) ctx.jsm.consumers.delete(stream, name).catch(() => undefined);
    }
    if (!stopped()) await sleep(Math.min(5000, 100 * 2 ** Math.min(failures, 6)), undefined, { signal }).catch(() => undefined);
  }
}
