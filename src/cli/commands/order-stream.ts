/**
 * Sends one order and follows its NDJSON answer: a line per host as results arrive (and
 * `host: line` for streamed output), then the failing hosts' messages and a summary; or, with
 * --json, one object keyed by host at the end. Exit status 0 only when every host succeeded.
 */
import { createInterface } from 'node:readline';
import { formatDuration } from '../../protocol/duration.ts';
import type { OrderEvent, OrderRequest } from '../../protocol/order-api.ts';
import type { HostResult } from '../../protocol/orders.ts';
import type { Api } from '../api.ts';
import { printJson, println, type CliContext } from '../context.ts';

/** How a command wants the answer shown. */
export interface StreamOptions {
  json: boolean;
  /** Print every line of output (logs), not only the first line per host. */
  allLines: boolean;
  /** Ctrl-C is the normal end (logs --follow): outstanding hosts are not counted as failures. */
  interruptible: boolean;
}

/** The lines of a result's or progress's content, whatever shape the agent gave it. */
export function contentLines(content: unknown): string[] {
  if (content === undefined || content === null) return [];
  if (typeof content === 'string') return content.replace(/\n$/, '').split('\n');
  if (Array.isArray(content)) return content.flatMap((item) => contentLines(item));
  if (typeof content === 'object') {
    const record = content as Record<string, unknown>;
    for (const key of ['lines', 'line', 'output', 'stdout', 'text']) if (record[key] !== undefined) return [...contentLines(record[key]), ...(key === 'stdout' ? contentLines(record['stderr']) : [])];
    return [JSON.stringify(content)];
  }
  return [String(content)];
}

/** One host's row: HOST, OK/FAIL, CODE, DURATION, first line of the message or content. */
function row(host: string, width: number, result: HostResult): string {
  const first = (result.message.split('\n')[0] || contentLines(result.content)[0]) ?? '';
  const cells = [host.padEnd(width), (result.ok ? 'OK' : 'FAIL').padEnd(4), String(result.code).padEnd(15), formatDuration(result.durationMs).padEnd(8), first];
  return cells.join('   ').trimEnd();
}

/** Sends the order, prints as it goes and sets the exit status. */
export async function streamOrder(api: Api, context: CliContext, request: OrderRequest, options: StreamOptions): Promise<void> {
  const stop = new AbortController();
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
    stop.abort();
  };
  process.once('SIGINT', onSigint);
  const results = new Map<string, HostResult>();
  let hosts: string[] = [];
  let id = '';
  let width = 4;
  try {
    const response = await api.raw({ method: 'POST', path: '/v1/orders', json: request, signal: stop.signal });
    const lines = createInterface({ input: response.body, crlfDelay: Infinity });
    // Closing the connection tells the server to cancel; closing the reader ends the loop below.
    stop.signal.addEventListener('abort', () => {
      response.body.destroy();
      lines.close();
    }, { once: true });
    try {
      for await (const line of lines) {
        if (line.trim() === '') continue;
        const event = JSON.parse(line) as OrderEvent;
        if (event.type === 'order') {
          ({ id, hosts } = event);
          width = Math.max(4, ...hosts.map((h) => h.length));
          if (!options.json) println(context.stdout, ['HOST'.padEnd(width), 'OK  ', 'CODE'.padEnd(15), 'DURATION', 'MESSAGE'].join('   '));
        } else if (event.type === 'progress') {
          if (!options.json) for (const text of contentLines(event.content)) println(context.stdout, `${event.host}: ${text}`);
        } else if (event.type === 'result') {
          results.set(event.host, event.result);
          if (options.json) continue;
          println(context.stdout, row(event.host, width, event.result));
          if (options.allLines && event.result.ok) for (const text of contentLines(event.result.content)) println(context.stdout, `${event.host}: ${text}`);
        }
      }
    } catch (error) {
      if (!interrupted) throw error;
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
  const missing = hosts.filter((host) => !results.has(host));
  for (const host of missing) {
    results.set(host, { ok: options.interruptible && interrupted, code: interrupted ? 'CANCELLED' : 'NO_RESULT', message: interrupted ? 'interrupted' : 'the server ended the answer early', durationMs: 0 });
  }
  const failed = [...results].filter(([, result]) => !result.ok);
  if (options.json) {
    printJson(context.stdout, Object.fromEntries([...results].sort(([a], [b]) => a.localeCompare(b)).map(([host, r]) => [host, { ok: r.ok, code: r.code, message: r.message, content: r.content ?? null, durationMs: r.durationMs }])));
  } else {
    if (failed.length > 0) println(context.stdout, '\nfailed:');
    for (const [host, result] of failed) println(context.stdout, `${host}: ${result.code}: ${result.message.replace(/\n+$/, '').replaceAll('\n', `\n${host}: `)}`);
    println(context.stdout, `\n${results.size - failed.length} ok, ${failed.length} failed of ${hosts.length} (order ${id})`);
  }
  if (failed.length > 0 || (interrupted && !options.interruptible)) context.setExitCode(interrupted && !options.interruptible ? 130 : 1);
}
