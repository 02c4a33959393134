/**
 * The object store as the blob backend uses it: objects named by upload id (hex), read back
 * chunk by chunk through a pull consumer (so a slow reader applies backpressure instead of
 * buffering the object in memory), and removed without leaving a deletion marker behind.
 */
import { randomBytes } from 'node:crypto';
import type { ObjectInfo } from '@nats-io/obj';
import type { NatsContext } from './context.ts';
import { ephemeralConsumer, getLast } from './stream-reads.ts';

/** A fresh, unguessable object name for one upload. */
export function newObjectName(): string {
  return randomBytes(16).toString('hex');
}

/** The stream behind the object store. */
export function objectStream(ctx: NatsContext): string {
  return `OBJ_${ctx.layout.objects}`;
}

/** The subject holding an object's chunks. */
export function chunkSubject(ctx: NatsContext, nuid: string): string {
  return `$O.${ctx.layout.objects}.C.${nuid}`;
}

/** The subject holding an object's metadata (names are ASCII here, encoded as the object store does). */
export function metaSubject(ctx: NatsContext, name: string): string {
  return `$O.${ctx.layout.objects}.M.${Buffer.from(name, 'latin1').toString('base64').replace(/\+/g, '-').replace(/\//g, '_')}`;
}

/** An object's metadata, or undefined when it is absent or deleted. */
export async function objectInfo(ctx: NatsContext, name: string): Promise<ObjectInfo | undefined> {
  const info = await ctx.objects.info(name);
  return info === null || info.deleted ? undefined : info;
}

/** Removes an object, metadata first (it disappears at once), then its chunks. Absent is fine. */
export async function removeObject(ctx: NatsContext, name: string): Promise<void> {
  const info = await ctx.objects.info(name);
  await ctx.jsm.streams.purge(objectStream(ctx), { filter: metaSubject(ctx, name) });
  if (info !== null && info.nuid) await ctx.jsm.streams.purge(objectStream(ctx), { filter: chunkSubject(ctx, info.nuid) });
}

/**
 * What identifies "the same stored bytes as last time" without reading them: the object, its
 * metadata revision and the sequence of its last chunk (rewriting any chunk changes the latter).
 */
export async function objectFingerprint(ctx: NatsContext, name: string, info: ObjectInfo): Promise<string> {
  const lastChunk = info.chunks === 0 ? undefined : await getLast(ctx, objectStream(ctx), chunkSubject(ctx, info.nuid));
  return `${name}:${info.revision}:${lastChunk?.seq ?? 0}`;
}

/** An object's chunks in order, fetched a few at a time as the caller pulls them. */
export async function* objectChunks(ctx: NatsContext, info: ObjectInfo): AsyncGenerator<Uint8Array> {
  if (info.chunks === 0) return;
  const stream = objectStream(ctx);
  const created = await ctx.jsm.consumers.add(stream, ephemeralConsumer(chunkSubject(ctx, info.nuid)));
  try {
    const consumer = await ctx.js.consumers.get(stream, created.name);
    let received = 0;
    // The consumer may sit on a follower still catching up: wait for the chunks the metadata
    // counts (not just those it had when created). A chunk is at most 1 MiB; eight in flight keep
    // the pipe full without holding much. Fewer chunks than counted end the read short, and the
    // caller's size and hash checks refuse it.
    while (received < info.chunks) {
      const batch = await consumer.fetch({ max_messages: Math.min(8, info.chunks - received), expires: 10_000 });
      let got = 0;
      for await (const message of batch) {
        got += 1;
        received += 1;
        yield message.data;
      }
      if (got === 0) return;
    }
  } finally {
    ctx.jsm.consumers.delete(stream, created.name).catch(() => undefined);
  }
}
