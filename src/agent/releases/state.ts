/**
 * `CONFDIR/state.json`: what this machine has deployed for one configuration. The `current`
 * symlink is the truth about what runs; this file records the order of deploys (for pruning and
 * local rollback) and the last failure (for reports and backoff). Written atomically.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { StrataError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../lib/atomic-file.ts';
import type { Configuration } from '../../store/contract.ts';

/** Deploys remembered in `history`, oldest dropped first. */
export const HISTORY_LIMIT = 20;

/** A layer as recorded with a release. */
export interface ReleaseLayer {
  component: string;
  version: string;
  blob: string;
}

/** One deploy of a release: which configuration id and revision, and when it became current. */
export interface ReleaseRecord {
  id: string;
  revision: number;
  deployedAt: string;
  /** Kept with every record so a local rollback can say what it rolled back to. */
  layers: ReleaseLayer[];
}

/** The last deploy that failed, for status reports and the retry backoff. */
export interface FailedDeploy {
  id: string;
  revision: number;
  at: string;
  attempts: number;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Hook output tail, or the error that stopped the deploy before the hook. */
  output: string;
  /** The failure's code and message, as reported. */
  code?: string;
  message?: string;
  /** When the next attempt is due: an agent restarted before then waits too. */
  retryAt?: string;
}

/** The content of `state.json`. */
export interface ReleaseState {
  configuration: string;
  current: ReleaseRecord | null;
  /** Deploys in the order they happened, newest last, at most HISTORY_LIMIT. */
  history: ReleaseRecord[];
  failed?: FailedDeploy;
}

/** Path of a configuration directory's state file. */
export function stateFilePath(confDir: string): string {
  return path.join(confDir, 'state.json');
}

/** Reads `state.json`, or undefined before the first deploy. */
export async function readState(confDir: string): Promise<ReleaseState | undefined> {
  const file = stateFilePath(confDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let state: unknown;
  try {
    state = JSON.parse(text);
  } catch (error) {
    throw new StrataError('INTERNAL', `${file} is not valid JSON`, { details: { file }, cause: error });
  }
  const shaped = state as Partial<ReleaseState> | null;
  if (typeof shaped?.configuration !== 'string' || !Array.isArray(shaped.history) || shaped.current === undefined) {
    throw new StrataError('INTERNAL', `${file} does not hold a release state`, { details: { file } });
  }
  return shaped as ReleaseState;
}

/**
 * Writes `state.json` atomically (temp file, fsync, rename, fsync), trimming history to its limit.
 * Callers beside this module hold the releases lock around their read and this write, so a local
 * rollback's write is never lost between them.
 */
export async function writeState(confDir: string, state: ReleaseState): Promise<void> {
  const trimmed: ReleaseState = { ...state, history: state.history.slice(-HISTORY_LIMIT) };
  await writeFileAtomic(stateFilePath(confDir), `${JSON.stringify(trimmed, null, 2)}\n`);
}

/** The state after `configuration` was deployed and made current: appended to history, failure cleared. */
export function markDeployed(state: ReleaseState | undefined, configuration: Configuration, deployedAt = new Date().toISOString()): ReleaseState {
  const record: ReleaseRecord = {
    id: configuration.id,
    revision: configuration.revision,
    deployedAt,
    layers: configuration.layers.map(({ component, version, blob }) => ({ component, version, blob })),
  };
  const history = [...(state?.history ?? []), record].slice(-HISTORY_LIMIT);
  return { configuration: configuration.name, current: record, history };
}
