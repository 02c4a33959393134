/**
 * Reading streams so that every acknowledged write is seen, in a cluster too: gets and stream
 * info are answered by the stream leader; consumers (used where one request stream beats many
 * gets) may sit on a follower, so what they return is checked against the leader.
 */
import { setTimeout as sleep } from 'node:timers/promises';
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

/**
 * The newest message of every subject matching `filter`, oldest first. Served by the stream
 * leader (the subject list from stream info, then one get per subject, pipelined), so it sees
 * every acknowledged write: a consumer could sit on a follower that is still catching up.
 */
export async function lastPerSubject(ctx: NatsContext, stream: string, filter: string): Promise<Stored[]> {
  const info = await ctx.jsm.streams.info(stream, { subjects_filter: filter });
  const subjects = Object.keys(info.state.subjects ?? {});
  const found: Stored[] = [];
  for (let i = 0; i < subjects.length; i += 256) {
    const batch = await Promise.all(subjects.slice(i, i + 256).map((subject) => getLast(ctx, stream, subject)));
    for (const message of batch) if (message !== undefined) found.push(message);
  }
  return found.sort((a, b) => a.seq - b.seq);
}

/** The messages with sequences `from`..`to` that still exist, oldest first (leader-served gets, pipelined). */
export async function readRange(ctx: NatsContext, stream: string, from: number, to: number): Promise<Stored[]> {
  const found: Stored[] = [];
  for (let low = Math.max(1, from); low <= to; low += 256) {
    const seqs = Array.from({ length: Math.min(256, to - low + 1) }, (_, i) => low + i);
    for (const message of await Promise.all(seqs.map((seq) => getBySeq(ctx, stream, seq)))) if (message !== undefined) found.push(message);
  }
  return found;
}

/**
 * Every message on one subject, oldest first, read through a short-lived consumer (one request
 * stream instead of a get per message). The consumer may sit on a follower that lags, so the
 * result counts only when it ends with the message the leader has as the subject's newest.
 */
export async function subjectHistory(ctx: NatsContext, stream: string, subject: string): Promise<Stored[]> {
  for (let attempt = 1; ; attempt += 1) {
    const [newest, messages] = await Promise.all([getLast(ctx, stream, subject), consume(ctx, stream, subject)]);
    if ((messages[messages.length - 1]?.seq ?? 0) >= (newest?.seq ?? 0) || attempt >= 50) return messages;
    await sleep(100);
  }
}

/** Every message on `filter` as a new consumer on some replica sees them when it is created. */
async function consume(ctx: NatsContext, stream: string, filter: string): Promise<Stored[]> {
  const info = await ctx.jsm.consumers.add(stream, { ...ephemeralConsumer(filter), deliver_policy: DeliverPolicy.All });
  try {
    const out: Stored[] = [];
    if (info.num_pending === 0) return out;
    const consumer = await ctx.js.consumers.get(stream, info.name);
    while (out.length < info.num_pending) {
      const batch = await consumer.fetch({ max_messages: Math.min(info.num_pending - out.length, 1000), expires: 5000 });
      let got = 0;
      for await (const m of batch) {
        got += 1;
        out.push({ seq: m.seq, subject: m.subject, data: m.data, header: m.headers, time: m.time });
        if (out.length >= info.num_pending) break;
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
