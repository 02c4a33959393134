/**
 * Looking at the first bytes of a stream without losing them: archives are recognised by their
 * first block (gzip magic, a tar header, a zip signature) while the bytes keep streaming.
 */
import { Readable } from 'node:stream';

/** The first `bytes` of `source` (fewer when it is shorter) and a stream of all of its bytes again. */
export async function peekStream(source: Readable, bytes: number): Promise<{ head: Buffer; stream: Readable }> {
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    while (length < bytes) {
      const next = await iterator.next();
      if (next.done) break;
      chunks.push(next.value);
      length += next.value.length;
    }
  } catch (error) {
    await iterator.return?.();
    throw error;
  }
  const head = Buffer.concat(chunks);
  const stream = Readable.from((async function* () {
    try {
      if (head.length > 0) yield head;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      // The reader stopped (or finished): release the source too.
      await iterator.return?.();
    }
  })(), { objectMode: false });
  return { head: head.subarray(0, bytes), stream };
}
