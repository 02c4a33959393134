/**
 * Retention: keep the newest versions of every component and garbage-collect the rest. It works
 * through the Store contract only, so every backend gets the same policy; the store's own IN_USE
 * check decides what a configuration still needs, atomically with configuration writes.
 */
import { StrataError, isStrataError } from './errors.ts';
import type { Store } from '../store/contract.ts';

/** How much to keep. */
export interface RetentionPolicy {
  /** Versions to keep per component, newest first; at least 1. */
  maxVersions: number;
  /** Unreferenced blobs and abandoned uploads younger than this survive (see `Store.sweep`). */
  graceMs: number;
  /** The time to measure the grace period from; defaults to now. */
  now?: Date;
}

/** A version of a component. */
export interface VersionRef {
  component: string;
  version: string;
}

/** What one retention run did. */
export interface RetentionReport {
  /** Old versions that were deleted. */
  versionsDeleted: VersionRef[];
  /** Old versions kept because a configuration's current revision uses them. */
  versionsKeptInUse: (VersionRef & { configurations: string[] })[];
  /** Blobs the sweep deleted. */
  blobsDeleted: string[];
  /** Abandoned staged uploads the sweep removed. */
  uploadsRemoved: number;
}

/**
 * Deletes all but the newest `maxVersions` versions of each component (skipping versions in
 * use), then sweeps unreferenced blobs and abandoned uploads older than `graceMs`.
 */
export async function applyRetention(store: Store, policy: RetentionPolicy): Promise<RetentionReport> {
  if (!Number.isSafeInteger(policy.maxVersions) || policy.maxVersions < 1) {
    throw new StrataError('BAD_REQUEST', `maxVersions must be a whole number of at least 1, not ${policy.maxVersions}`);
  }
  const report: RetentionReport = { versionsDeleted: [], versionsKeptInUse: [], blobsDeleted: [], uploadsRemoved: 0 };
  for (const summary of await store.listComponents()) {
    let versions;
    try {
      versions = await store.listVersions(summary.name);
    } catch (error) {
      // Deleted by someone else since listComponents: nothing left to retain.
      if (isStrataError(error, 'COMPONENT_NOT_FOUND')) continue;
      throw error;
    }
    // listVersions is oldest first, so the ones to drop are at the front.
    for (const old of versions.slice(0, Math.max(0, versions.length - policy.maxVersions))) {
      await deleteOld(store, { component: old.component, version: old.version }, report);
    }
  }
  const swept = await store.sweep({ graceMs: policy.graceMs, ...(policy.now === undefined ? {} : { now: policy.now }) });
  report.blobsDeleted = swept.blobsDeleted;
  report.uploadsRemoved = swept.uploadsRemoved;
  return report;
}

/** Deletes one old version, recording it as deleted or as kept because it is in use. */
async function deleteOld(store: Store, ref: VersionRef, report: RetentionReport): Promise<void> {
  try {
    await store.deleteVersion(ref.component, ref.version);
    report.versionsDeleted.push(ref);
  } catch (error) {
    if (isStrataError(error, 'IN_USE')) {
      const used = error.details?.['configurations'];
      const configurations = Array.isArray(used) ? used.filter((name): name is string => typeof name === 'string') : [];
      report.versionsKeptInUse.push({ ...ref, configurations });
    } else if (!isStrataError(error, 'VERSION_NOT_FOUND')) {
      throw error;
    }
  }
}
