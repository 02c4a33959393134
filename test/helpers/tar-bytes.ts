/** Hand-built tar archives, so hostile entries (absolute paths, "..", devices, fifos) are easy to craft. */
import { Header, type HeaderData } from 'tar';

/** A tar entry to craft: header fields plus an optional body; a path ending in `/` is a directory. */
export type TarInput = HeaderData & { body?: string | Buffer };

/** Builds a tar with node-tar's Header, end marker included unless `endMarker` is false. */
export function tarBytes(entries: TarInput[], { endMarker = true } = {}): Buffer {
  const blocks: Buffer[] = [];
  for (const { body, ...data } of entries) {
    const content = Buffer.from(body ?? '');
    const header = Buffer.alloc(512);
    const type = data.type ?? (data.path?.endsWith('/') ? 'Directory' : 'File');
    const mode = data.mode ?? (type === 'Directory' ? 0o755 : 0o644);
    new Header({ uid: 0, gid: 0, mtime: new Date(1_600_000_000_000), ...data, type, mode, size: content.length }).encode(header);
    blocks.push(header, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  if (endMarker) blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
