/**
 * Reading streams: the last message on a subject, a stream's last sequence, and scans through
 * short-lived ephemeral consumers (in memory, one replica, no acks) that learn how many messages
 * they will deliver when created, so a scan is a consistent snapshot and never waits for a timeout.
 */
import { AckPolicy, DeliverPolicy, type ConsumerConfig } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';
import type { NatsContext } from './context.ts';

/** A stored message, whichever API read it. */
export interface Stored {
  seq: number;
  subject: string;
  data: Uint8Array;
  header: MsgHdrs | undefined;
  time: Date;
}

/** The sequence of a stream's newest message (0 when empty). */
export async function lastSeq(ctx: NatsContext, stream: string): Promise<number> {
  return (await ctx.jsm.streams.info(stream)).state.last_seq;
}

/** The newest message on `subject`, or undefined. Served by the stream leader. */
export async function getLast(ctx: NatsContext, stream: string, subject: string): Promise<Stored | undefined> {
  const message = await ctx.jsm.streams.getMessage(stream, { last_by_subj: subject });
  return message === null ? undefined : { seq: message.seq, subject: message.subject, data: message.data, header: message.header, time: message.time };
}

/** The message with sequence `seq`, or undefined when it is gone. */
export async function getBySeq(ctx: NatsContext, stream: string, seq: number): Promise<Stored | undefined> {
  const message = await ctx.jsm.streams.getMessage(stream, { seq }).catch((error: unknown) => {
    if (/no message found|not found/i.test(String((error as Error).message))) return null;
    throw error;
  });
  return message === null ? undefined : { seq: message.seq, subject: message.subject, data: message.data, header: message.header, time: message.time };
}

/** Where a scan starts. */
export type ScanFrom = 'last-per-subject' | 'all' | { startSeq: number };

/**
 * Every message matching `filter` from `from`, as the stream holds them when the scan starts
 * (at most `max`), oldest first. `last-per-subject` yields the newest message of each subject.
 */
export async function scan(ctx: NatsContext, stream: string, filter: string, from: ScanFrom, max = Infinity): Promise<Stored[]> {
  const config: Partial<ConsumerConfig> = {
    ...ephemeralConsumer(filter),
    ...(from === 'last-per-subject'
      ? { deliver_policy: DeliverPolicy.LastPerSubject }
      : from === 'all'
        ? { deliver_policy: DeliverPolicy.All }
        : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, from.startSeq) }),
  };
  const info = await ctx.jsm.consumers.add(stream, config);
  try {
    const wanted = Math.min(info.num_pending, max);
    const out: Stored[] = [];
    if (wanted === 0) return out;
    const consumer = await ctx.js.consumers.get(stream, info.name);
    while (out.length < wanted) {
      const batch = await consumer.fetch({ max_messages: Math.min(wanted - out.length, 1000), expires: 5000 });
      let got = 0;
      for await (const m of batch) {
        got += 1;
        out.push({ seq: m.seq, subject: m.subject, data: m.data, header: m.headers, time: m.time });
        if (out.length >= wanted) break;
      }
      if (got === 0) break;
    }
    return out;
  } finally {
    // Not awaited: the consumer also expires by itself (inactive_threshold).
    ctx.jsm.consumers.delete(stream, info.name).catch(() => undefined);
  }
}

/** The configuration of a short-lived consumer: memory, one replica, no acks, gone when idle. */
export function ephemeralConsumer(filter: string): Partial<ConsumerConfig> {
  return {
    filter_subject: filter,
    ack_policy: AckPolicy.None,
    mem_storage: true,
    num_replicas: 1,
    inactive_threshold: 30_000_000_000,
  };
}
