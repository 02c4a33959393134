/**
 * The ledger: one stream holding blob records, component versions, component tombstones and
 * configuration revisions. Every read-check-write that spans records (addVersion, deleteVersion,
 * deleteComponent, putConfiguration, deleteBlob, sweep) is an optimistic transaction on the
 * whole stream: read the stream's last sequence S, read what the check needs, then publish with
 * `Nats-Expected-Last-Sequence: S`. JetStream refuses the publish if anything else was appended
 * in between, and the transaction starts over, so each one commits against exactly the state it
 * checked (serializable, without multi-key transactions, which NATS 2.9 lacks).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { MsgHdrs } from '@nats-io/transport-node';
import { StrataError } from '../../core/errors.ts';
import { isWrongLastSequence, messageHeaders, storageError, token } from './codec.ts';
import type { NatsContext } from './context.ts';
import { lastSeq } from './stream-reads.ts';

/** Subjects of the ledger. */
export const ledgerSubject = {
  blob: (ctx: NatsContext, sha256: string) => `${ctx.layout.prefix}.ledger.blob.${sha256}`,
  allBlobs: (ctx: NatsContext) => `${ctx.layout.prefix}.ledger.blob.>`,
  version: (ctx: NatsContext, component: string, version: string) => `${ctx.layout.prefix}.ledger.ver.${token(component)}.${token(version)}`,
  componentVersions: (ctx: NatsContext, component: string) => `${ctx.layout.prefix}.ledger.ver.${token(component)}.>`,
  allVersions: (ctx: NatsContext) => `${ctx.layout.prefix}.ledger.ver.>`,
  component: (ctx: NatsContext, component: string) => `${ctx.layout.prefix}.ledger.comp.${token(component)}`,
  allComponents: (ctx: NatsContext) => `${ctx.layout.prefix}.ledger.comp.>`,
  configuration: (ctx: NatsContext, name: string) => `${ctx.layout.prefix}.ledger.cfg.${token(name)}`,
  allConfigurations: (ctx: NatsContext) => `${ctx.layout.prefix}.ledger.cfg.>`,
};

/** One message to append to the ledger. */
export interface LedgerWrite {
  subject: string;
  data: Uint8Array;
  tombstone?: boolean;
  /** Drop the subject's older messages when this one is stored. */
  rollup?: boolean;
  /** Per-subject compare-and-set: the subject's newest message must have this sequence (0: none). */
  expectedSubjectSeq?: number;
}

/** What a transaction attempt decided: return without writing, or write one message. */
export type Plan<T> = { result: T } | { write: LedgerWrite; done: (seq: number) => T | Promise<T> };

const MAX_ATTEMPTS = 200;

/** Appends one message; `expectedLastSeq` makes it conditional on the whole stream, `write.expectedSubjectSeq` on its subject. */
export async function appendLedger(ctx: NatsContext, write: LedgerWrite, expectedLastSeq?: number): Promise<number> {
  const headers: MsgHdrs | undefined = messageHeaders({ tombstone: write.tombstone ?? false, rollup: write.rollup ?? false });
  try {
    const ack = await ctx.js.publish(write.subject, write.data, {
      ...(headers ? { headers } : {}),
      expect: {
        ...(expectedLastSeq === undefined ? {} : { lastSequence: expectedLastSeq }),
        ...(write.expectedSubjectSeq === undefined ? {} : { lastSubjectSequence: write.expectedSubjectSeq }),
      },
    });
    return ack.seq;
  } catch (error) {
    throw storageError(error);
  }
}

/**
 * Runs an optimistic transaction on the ledger (see the file's TSDoc): `attempt` reads and checks
 * (throwing a StrataError to refuse), and its write commits only if the ledger did not move since
 * before it read. Lost races retry with a short random backoff.
 */
export async function transact<T>(ctx: NatsContext, attempt: () => Promise<Plan<T>>): Promise<T> {
  for (let tries = 1; ; tries += 1) {
    const before = await lastSeq(ctx, ctx.layout.ledger.stream);
    const plan = await attempt();
    if ('result' in plan) return plan.result;
    try {
      const seq = await appendLedger(ctx, plan.write, before);
      return await plan.done(seq);
    } catch (error) {
      if (!isWrongLastSequence(error)) throw error;
      if (tries >= MAX_ATTEMPTS) throw new StrataError('INTERNAL', `the ledger stayed too busy to commit after ${tries} attempts`, { cause: error });
      await sleep(Math.random() * Math.min(50, 2 * tries));
    }
  }
}
