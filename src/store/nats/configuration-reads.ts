/**
 * Reading configurations from the ledger: `cfg.<name>` holds every revision since the last
 * deletion (a deletion is a tombstone that rolls the subject's history up), so the newest message
 * is the current revision and its stream sequence is the revision's `seq`.
 */
import type { Configuration, ConfigurationEvent } from '../contract.ts';
import { fromJson, isTombstone, untoken } from './codec.ts';
import type { NatsContext } from './context.ts';
import { ledgerSubject } from './ledger.ts';
import { getLast, lastPerSubject, type Stored } from './stream-reads.ts';

/** A revision as stored: everything but `seq`, which is the message's stream sequence. */
export type StoredRevision = Omit<Configuration, 'seq'>;

/** A revision message as a Configuration. */
export function configurationFrom(message: Stored): Configuration {
  const stored = fromJson<StoredRevision>(message.data);
  const { name, revision, id, layers, settings, updatedAt, updatedBy, note } = stored;
  return {
    name, revision, seq: message.seq, id, layers,
    ...(settings === undefined ? {} : { settings }),
    updatedAt, updatedBy,
    ...(note === undefined ? {} : { note }),
  };
}

/** A configuration message (revision or tombstone) as a watch event. */
export function eventFrom(ctx: NatsContext, message: Stored): ConfigurationEvent {
  if (isTombstone(message)) return { type: 'delete', seq: message.seq, name: nameOfSubject(ctx, message.subject) };
  const configuration = configurationFrom(message);
  return { type: 'put', seq: message.seq, name: configuration.name, configuration };
}

/** The configuration name a `cfg.<token>` subject encodes. */
function nameOfSubject(ctx: NatsContext, subject: string): string {
  return untoken(subject.slice(ledgerSubject.configuration(ctx, '').length));
}

/** The current revision and the subject's newest sequence (0: never written), for compare-and-set. */
export async function readHead(ctx: NatsContext, name: string): Promise<{ current: Configuration | undefined; seq: number }> {
  const message = await getLast(ctx, ctx.layout.ledger.stream, ledgerSubject.configuration(ctx, name));
  if (message === undefined) return { current: undefined, seq: 0 };
  return { current: isTombstone(message) ? undefined : configurationFrom(message), seq: message.seq };
}

/** The current revision of every configuration, in ledger order. */
export async function currentConfigurations(ctx: NatsContext): Promise<Configuration[]> {
  const messages = await lastPerSubject(ctx, ctx.layout.ledger.stream, ledgerSubject.allConfigurations(ctx));
  return messages.filter((m) => !isTombstone(m)).map(configurationFrom);
}
