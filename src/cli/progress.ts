/**
 * Upload progress: a pass-through stream that drives a progress bar (rate and ETA) on stderr
 * when stderr is a terminal, and does nothing otherwise.
 */
import { Transform, type Readable } from 'node:stream';
import cliProgress from 'cli-progress';
import { formatBytes } from '../protocol/size.ts';
import type { CliContext } from './context.ts';

/** A progress bar on stderr that the caller advances; absent when stderr is not a terminal. */
export interface Progress {
  advance(bytes: number): void;
  finish(): void;
}

/** Starts a progress bar of `total` bytes with rate and ETA, or returns undefined when stderr is not a terminal. */
export function startProgress(context: CliContext, options: { total: number; label: string }): Progress | undefined {
  if (!context.stderr.isTTY || context.env['CI']) return undefined;
  const bar = new cliProgress.SingleBar({
    stream: context.stderr as NodeJS.WritableStream as NodeJS.WriteStream,
    format: `${options.label} [{bar}] {percentage}% {done}/{all} {rate}/s ETA {eta_formatted}`,
    hideCursor: true,
    clearOnComplete: true,
  }, cliProgress.Presets.shades_classic);
  let done = 0;
  const started = Date.now();
  bar.start(Math.max(options.total, 1), 0, { done: formatBytes(0), all: formatBytes(options.total), rate: formatBytes(0) });
  return {
    advance(bytes) {
      done += bytes;
      const seconds = Math.max((Date.now() - started) / 1000, 0.001);
      bar.update(Math.min(done, options.total), { done: formatBytes(done), rate: formatBytes(Math.round(done / seconds)) });
    },
    finish: () => bar.stop(),
  };
}

/** Wraps `source` so that reading it advances a progress bar of `total` bytes. */
export function progressStream(source: Readable, context: CliContext, options: { total: number; label: string }): Readable {
  const progress = startProgress(context, options);
  if (!progress) return source;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      progress.advance(chunk.length);
      callback(null, chunk);
    },
    flush(callback) {
      progress.finish();
      callback();
    },
  });
  counter.on('error', () => progress.finish());
  source.on('error', (error) => counter.destroy(error));
  return source.pipe(counter);
}
