/** `importRecord` on NATS: records written as given, with the same checks as the regular writes. */
import { StrataError } from '../../core/errors.ts';
import type { AgentRecord, Assignment, Configuration, ImportRecord } from '../contract.ts';
import { readBlobRecord } from './blob-records.ts';
import { isWrongLastSequence, token, toJson } from './codec.ts';
import { readHead, type StoredRevision } from './configuration-reads.ts';
import type { NatsContext } from './context.ts';
import { createRecord, getRecord, putRecord } from './kv-records.ts';
import { appendLedger, ledgerSubject, transact } from './ledger.ts';
import { lastSeq } from './stream-reads.ts';
import { readVersion } from './versions.ts';

/** Writes one imported record under the rules of `Store.importRecord`. */
export async function importRecord(ctx: NatsContext, record: ImportRecord): Promise<void> {
  switch (record.kind) {
    case 'version': {
      const v = record.version;
      await transact(ctx, async () => {
        const [existing, blob] = await Promise.all([readVersion(ctx, v.component, v.version), readBlobRecord(ctx, v.blob)]);
        if (existing.live) throw new StrataError('VERSION_EXISTS', `version ${JSON.stringify(v.version)} already exists`, { details: { component: v.component, version: v.version } });
        if (blob.record === undefined) throw new StrataError('BLOB_NOT_FOUND', `blob ${v.blob} not found: upload it first`, { details: { sha256: v.blob } });
        const stored = { component: v.component, version: v.version, blob: v.blob, size: blob.record.size, createdAt: v.createdAt, createdBy: v.createdBy };
        return { write: { subject: ledgerSubject.version(ctx, v.component, v.version), data: toJson(stored), rollup: true }, done: () => undefined };
      });
      return;
    }
    case 'history':
      await importHistory(ctx, record.revisions);
      return;
    case 'agent': {
      const { revision, ...fields } = record.agent;
      const written: AgentRecord = { ...fields, revision };
      if ((await createRecord(ctx.kv.agents, token(fields.name), written)) === undefined) {
        const current = (await getRecord<AgentRecord>(ctx.kv.agents, token(fields.name)))?.value.revision ?? 0;
        throw new StrataError('REVISION_CONFLICT', `agent ${fields.name} already exists`, { details: { name: fields.name, expectedRevision: 0, currentRevision: current } });
      }
      return;
    }
    case 'assignment': {
      const a: Assignment = { ...record.assignment };
      await createRecord(ctx.kv.assignments, `${token(a.configuration)}.${token(a.selector)}`, a);
      return;
    }
    case 'group': {
      const g = record.group;
      await putRecord(ctx.kv.groups, token(g.name), { name: g.name, ...(g.hosts === undefined ? {} : { hosts: [...g.hosts] }), ...(g.selector === undefined ? {} : { selector: g.selector }), updatedAt: g.updatedAt, updatedBy: g.updatedBy });
      return;
    }
  }
}

/**
 * Appends imported revisions as one chain of whole-ledger compare-and-set publishes: the first
 * expects the ledger as checked, each next one the previous one's sequence, so the checks (the
 * history continues; the last revision's layers exist) hold until the last revision is written.
 * If anyone writes in between, the rest is checked and written again.
 */
async function importHistory(ctx: NatsContext, revisions: Omit<Configuration, 'seq'>[]): Promise<void> {
  let remaining = revisions;
  while (remaining.length > 0) {
    const first = remaining[0]!;
    const last = remaining[remaining.length - 1]!;
    const before = await lastSeq(ctx, ctx.layout.ledger.stream);
    const head = await readHead(ctx, first.name);
    const current = head.current?.revision ?? 0;
    if (first.revision !== current + 1) {
      throw new StrataError('REVISION_CONFLICT', `configuration ${first.name} is at revision ${current}; the import starts at ${first.revision}`, {
        details: { name: first.name, expectedRevision: first.revision - 1, currentRevision: current },
      });
    }
    remaining.forEach((r, i) => {
      if (r.name !== first.name || r.revision !== first.revision + i) throw new StrataError('BAD_REQUEST', 'an imported history must be consecutive revisions of one configuration');
    });
    for (const layer of last.layers) {
      const stored = (await readVersion(ctx, layer.component, layer.version)).live?.version;
      if (stored === undefined || stored.blob !== layer.blob) {
        throw new StrataError('VERSION_NOT_FOUND', `${layer.component}:${layer.version} does not exist with blob ${layer.blob}`, { details: { component: layer.component, version: layer.version } });
      }
    }
    let expected = before;
    let subjectSeq = head.seq;
    let done = 0;
    try {
      for (const r of remaining) {
        const stored: StoredRevision = {
          name: r.name, revision: r.revision, id: r.id, layers: r.layers,
          ...(r.settings === undefined ? {} : { settings: r.settings }),
          updatedAt: r.updatedAt, updatedBy: r.updatedBy,
          ...(r.note === undefined ? {} : { note: r.note }),
        };
        expected = await appendLedger(ctx, { subject: ledgerSubject.configuration(ctx, r.name), data: toJson(stored), expectedSubjectSeq: subjectSeq }, expected);
        subjectSeq = expected;
        done += 1;
      }
    } catch (error) {
      if (!isWrongLastSequence(error)) throw error;
    }
    remaining = remaining.slice(done);
  }
}
