/**
 * Concurrent blob downloads: N agents fetching the same blob at once, as after a change to a fleet.
 * Pushes one generated layer, then for each N issues N concurrent `GET /v1/blobs/<sha256>` and
 * counts how each ended (complete, cut off mid-stream, HTTP error), with the server's warnings.
 * Found by the convergence benchmark on NATS (issue 6); results in docs/benchmarks.md.
 *
 *   node bench/blob-downloads.ts [--store sqlite|nats|both] [--concurrency 10,25,50] [--size-mib 20]
 */
import { mkdirSync, readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { TestServer } from '../test/helpers/strata-server.ts';
import { benchWorkspace, parseStores, startBackend, storeLabel, STORE_OPTION } from './lib/backend.ts';
import { table } from './lib/stats.ts';
import { caFile, strataJson } from './lib/strata.ts';
import { generateTree } from './lib/tree.ts';

const REQUEST_TIMEOUT_MS = 120_000;

/** How one download ended. */
type Outcome = 'complete' | 'cut off mid-stream' | `HTTP ${number}` | 'request error' | 'timed out';

function parseOptions(): { stores: ReturnType<typeof parseStores>; concurrency: number[]; sizeMib: number } {
  const { values } = parseArgs({ options: { concurrency: { type: 'string', default: '10,25,50' }, 'size-mib': { type: 'string', default: '20' }, ...STORE_OPTION } });
  const concurrency = values.concurrency.split(',').map(Number);
  if (concurrency.some((n) => !Number.isInteger(n) || n < 1 || n > 200)) throw new Error('--concurrency: whole numbers from 1 to 200');
  const sizeMib = Number(values['size-mib']);
  if (!Number.isInteger(sizeMib) || sizeMib < 1 || sizeMib > 256) throw new Error('--size-mib: 1 to 256');
  return { stores: parseStores(values.store), concurrency, sizeMib };
}

/** One download of the whole blob; never rejects. */
function download(server: TestServer, ca: string, blob: string, size: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const request = https.get(new URL(`/v1/blobs/${blob}`, server.url), { ca, agent: false, timeout: REQUEST_TIMEOUT_MS, headers: { authorization: `Bearer ${server.token}` } }, (response) => {
      let bytes = 0;
      response.on('data', (chunk: Buffer) => (bytes += chunk.length));
      response.on('end', () => resolve(response.statusCode !== 200 ? `HTTP ${response.statusCode ?? 0}` : bytes === size ? 'complete' : 'cut off mid-stream'));
      // A stream the server cuts off ends in 'aborted', 'error' or a bare 'close' depending on timing; the first settles it.
      const cutOff = (): void => resolve(response.statusCode === 200 ? 'cut off mid-stream' : `HTTP ${response.statusCode ?? 0}`);
      response.on('aborted', cutOff);
      response.on('error', cutOff);
      response.on('close', () => (response.complete ? undefined : cutOff()));
    });
    request.on('timeout', () => {
      request.destroy();
      resolve('timed out');
    });
    request.on('error', () => resolve('request error'));
  });
}

/** Warnings and errors the server logged since `from` (an offset in its log), by message. */
function warnings(server: TestServer, from: number): string {
  const counts: Record<string, number> = {};
  for (const line of server.logs().slice(from).split('\n')) {
    const match = /"level":(\d+).*"msg":"([^"]*)"/.exec(line);
    if (match && Number(match[1]) >= 40) {
      const err = /"err":\{"type":"(\w+)","message":"([^"]{0,60})/.exec(line);
      const key = `${match[2]}${err ? ` (${err[1]}: ${err[2]})` : ''}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
  }
  return Object.entries(counts).map(([message, count]) => `${count}× ${message}`).join('; ') || 'none';
}

async function main(): Promise<void> {
  const { stores, concurrency, sizeMib } = parseOptions();
  const { root, backends, close } = benchWorkspace('strata-bench-blobs-');
  try {
    const layer = path.join(root, 'layer');
    mkdirSync(layer);
    generateTree(layer, { totalBytes: sizeMib * 1024 * 1024, smallFiles: 100, largeFiles: 0, seed: 0xb10b });
    const rows = [['store', 'concurrent', 'seconds', 'outcomes', 'server warnings and errors']];
    for (const store of stores) {
      const backend = await startBackend(root, store);
      backends.push(backend);
      const server = backend.servers[0]!;
      const { result } = await strataJson<{ blob: string; size: number }>(server, ['push', layer, '--name', 'data', '--version', 'v1']);
      const ca = readFileSync(caFile(server), 'utf8');
      for (const n of concurrency) {
        const logFrom = server.logs().length;
        const started = performance.now();
        const outcomes = await Promise.all(Array.from({ length: n }, () => download(server, ca, result.blob, result.size)));
        const seconds = (performance.now() - started) / 1000;
        const counts: Record<string, number> = {};
        for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
        const summary = Object.entries(counts).map(([outcome, count]) => `${count} ${outcome}`).join(', ');
        console.log(`${storeLabel(store)}: ${n} concurrent downloads of ${result.size} bytes: ${summary} in ${seconds.toFixed(1)} s`);
        rows.push([storeLabel(store), String(n), seconds.toFixed(1), summary, warnings(server, logFrom)]);
      }
      await backend.stop();
    }
    console.log(`\n${table(rows)}`);
  } finally {
    await close();
  }
}

await main();
