/**
 * The one way Strata processes create their logger: pino, JSON lines on stderr, with every field
 * that could carry a secret redacted.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

/** Fields never written to a log, wherever they appear. */
export const REDACTED_PATHS = [
  'token', '*.token', 'secret', '*.secret', 'password', '*.password', 'joinToken', '*.joinToken',
  'req.headers.authorization', 'headers.authorization', 'authorization', '*.authorization',
];

/** A pino logger writing JSON lines to `destination` (stderr by default). */
export function createLogger(options: { level: LevelWithSilent; name?: string; destination?: NodeJS.WritableStream }): Logger {
  return pino(
    {
      level: options.level,
      ...(options.name ? { name: options.name } : {}),
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    (options.destination ?? process.stderr) as pino.DestinationStream,
  );
}

export type { Logger };
