/** Release directories with small service programs, for the supervisor tests. */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ServiceSpecSchema, type ServiceSpecInput } from '../../src/protocol/service.ts';
import { resolveService, type ResolvedService } from '../../src/agent/service/resolve.ts';

/** Writes `text` to `file` (its directory created) as an executable; returns `file`. */
export async function writeScript(file: string, text: string): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
  await chmod(file, 0o755);
  return file;
}

/** Writes executable files into `dir` (created), by relative name. */
export async function writeRelease(dir: string, files: Record<string, string>): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeScript(path.join(dir, name), text);
  return dir;
}

/** A sh script that runs `node` (the test's own) on a JavaScript program. */
export function nodeScript(js: string): string {
  return `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} -e ${shellQuote(js)} "$@"\n`;
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** A node program answering HTTP on the port in its first argument with `status` (else its second argument, else 200) and `body` (else STRATA_REVISION). */
export function httpServerScript(options: { status?: number; body?: string } = {}): string {
  return nodeScript(`
    const port = Number(process.argv[1]);
    const status = ${options.status ?? 'Number(process.argv[2] ?? 200)'};
    const body = ${options.body === undefined ? 'process.env.STRATA_REVISION' : JSON.stringify(options.body)};
    require('node:http').createServer((req, res) => { res.statusCode = status; res.end(body); }).listen(port, '127.0.0.1');
    process.on('SIGTERM', () => process.exit(0));
  `);
}

/** Resolves a spec (as written) against a release directory. */
export function resolveSpec(spec: ServiceSpecInput, releaseDir: string, revision = 1): Promise<ResolvedService> {
  return resolveService(ServiceSpecSchema.parse(spec), releaseDir, { configuration: 'site', revision, releaseId: `r${revision}` }, { PATH: process.env['PATH'], HOME: process.env['HOME'] });
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
