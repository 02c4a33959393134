/**
 * Where a sync may write: the group's destination, resolved the way the kernel will resolve it,
 * must lie inside one of the config's `allowed_destinations`. vozlt compared the raw string with
 * `^prefix`, so `/srv/../etc` passed; here `..` is refused outright and symlinks are followed
 * (realpath of the nearest existing ancestor), so a destination symlinked outside is refused too.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';

/** `target` with every existing ancestor's symlinks resolved; the missing rest is appended as is. */
export async function resolveExisting(target: string): Promise<string> {
  const missing: string[] = [];
  let current = target;
  for (;;) {
    try {
      return path.join(await realpath(current), ...missing.reverse());
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
      const parent = path.dirname(current);
      if (parent === current) return target;
      missing.push(path.basename(current));
      current = parent;
    }
  }
}

/** True when `child` is `parent` or inside it (whole path segments, so /srv does not hold /srvx). */
function inside(parent: string, child: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);
}

/** The resolved destination when it is allowed, or the reason it is not. */
export async function checkDestination(destination: string, allowed: string[]): Promise<{ resolved: string } | { problem: string }> {
  if (!path.isAbsolute(destination)) return { problem: `destination ${destination} is not an absolute path` };
  if (destination.split('/').includes('..')) return { problem: `destination ${destination} contains ".."` };
  const resolved = await resolveExisting(path.normalize(destination));
  for (const prefix of allowed) {
    // The prefix is resolved too, so an allowed /srv that is itself a symlink still matches.
    if (inside(await resolveExisting(prefix), resolved)) return { resolved };
  }
  const via = resolved === path.normalize(destination).replace(/\/$/, '') ? '' : ` (it resolves to ${resolved})`;
  return { problem: `destination ${destination}${via} is not under an allowed destination (${allowed.join(', ') || 'none configured'})` };
}
