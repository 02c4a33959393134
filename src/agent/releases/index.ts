/** Release directories, the atomic `current` switch, local rollback, state.json and the lock over them (see layout.ts). */
export { currentLink, readCurrent, switchCurrent, switchToPrevious } from './current.ts';
export { assertReleaseId, isReleaseId, releasesDir, TEMP_PREFIX } from './layout.ts';
export { commitRelease, discardRelease, prepareRelease, pruneReleases, removeLeftovers, startWriteback } from './release-dirs.ts';
export { RELEASES_LOCK_WAIT_MS, withReleasesLock } from './releases-lock.ts';
export { HISTORY_LIMIT, markDeployed, readState, stateFilePath, writeState, type FailedDeploy, type ReleaseLayer, type ReleaseRecord, type ReleaseState } from './state.ts';
