/**
 * The Store contract: everything Strata keeps, behind one interface that every backend
 * (embedded SQLite today, NATS JetStream later) implements with the same semantics.
 * `conformance.ts` is the executable form of this TSDoc; a backend is correct when it passes it.
 *
 * Semantics shared by every method:
 * - Errors are `StrataError`s with a code from the catalog (`src/protocol/error-codes.ts`).
 *   A method that fails changes nothing.
 * - A method that resolves has made its write durable: a crash afterwards loses nothing.
 * - Times are ISO 8601 strings in UTC with millisecond precision.
 * - Names are validated by the caller (`src/protocol/names.ts`); stores do not re-validate them.
 */
import type { Readable } from 'node:stream';
import type { LayerRef } from '../protocol/names.ts';
import type { HostResult } from '../protocol/orders.ts';

/**
 * Longest a claim (`Store.claimOnce`) is remembered: twice the agents' allowed clock skew (a
 * signature is accepted from five minutes before its timestamp to five after), and a minute more.
 */
export const CLAIM_MAX_TTL_MS = 11 * 60_000;

/** What a claim's key may be: letters, digits, '-' and '_' (a signature in hex, say). */
export const CLAIM_KEY = /^[A-Za-z0-9_-]{1,200}$/;

/** Throws unless `key` and `ttlMs` make a valid claim. */
export function assertClaim(key: string, ttlMs: number): void {
  if (!CLAIM_KEY.test(key)) throw new Error(`invalid claim key ${JSON.stringify(key.slice(0, 40))}`);
  if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > CLAIM_MAX_TTL_MS) throw new Error(`a claim lasts 1 ms to ${CLAIM_MAX_TTL_MS} ms, not ${ttlMs}`);
}

/** Facts about a stored blob. */
export interface BlobInfo {
  /** Lower-case hex sha256 of the bytes; the blob's name. */
  sha256: string;
  size: number;
  createdAt: string;
}

/** A blob that has been received and hashed but is not visible yet (see `PutBlobOptions.beforeCommit`). */
export interface StagedBlob {
  sha256: string;
  size: number;
  /** Reads the staged bytes again; `end` is inclusive, as in HTTP ranges. */
  read(range?: { start: number; end?: number }): Readable;
}

/** Options of `putBlob`. */
export interface PutBlobOptions {
  /** When given, the upload is refused with HASH_MISMATCH unless the bytes hash to it. */
  expectedSha256?: string;
  /** The upload is refused with PAYLOAD_TOO_LARGE past this many bytes (checked while streaming). */
  maxBytes?: number;
  /**
   * Called once every byte is received and hashed, before the blob becomes visible. If it throws,
   * the staged bytes are discarded and `putBlob` rejects with that error. Used to inspect archives.
   */
  beforeCommit?: (staged: StagedBlob) => Promise<void>;
}

/** A range of bytes to read; `end` is inclusive, as in HTTP ranges. */
export interface ByteRange {
  start: number;
  end?: number;
}

/** A version of a component: a name for one blob. Immutable once added. */
export interface ComponentVersion {
  component: string;
  version: string;
  /** sha256 of the archive this version names. */
  blob: string;
  size: number;
  createdAt: string;
  createdBy: string;
}

/** One component and a summary of its versions. */
export interface ComponentSummary {
  name: string;
  versionCount: number;
  /** The most recently added version. */
  latest: ComponentVersion;
}

/** A layer as a revision recorded it: the reference plus what it resolved to at the time. */
export interface ResolvedLayer extends LayerRef {
  blob: string;
  size: number;
  /** When the version was added (deploy-tools' `Ctime`). */
  createdAt: string;
}

/**
 * What an operator sets on a configuration. `settings` holds the optional service and hook
 * sections (shaped by later features); it is opaque to the store but part of the id.
 */
export interface ConfigurationSpec {
  layers: LayerRef[];
  settings?: Record<string, unknown>;
}

/** One revision of a configuration. The current revision is the one with the highest number. */
export interface Configuration {
  name: string;
  /** Per-configuration revision: 1 for the first write, +1 for every later one. Used for compare-and-set. */
  revision: number;
  /** Store-wide sequence of this write; strictly increasing across all configurations (see `watchConfigurations`). */
  seq: number;
  /** Content hash of the resolved layers and settings: equal ids mean an identical deployment. */
  id: string;
  layers: ResolvedLayer[];
  settings?: Record<string, unknown>;
  /** When this revision was written (deploy-tools' `Mtime`). */
  updatedAt: string;
  updatedBy: string;
  /** Free text saying why this revision exists, e.g. "rollback to 3". */
  note?: string;
}

/** Input of `putConfiguration`. */
export interface PutConfigurationInput {
  name: string;
  layers: ResolvedLayer[];
  settings?: Record<string, unknown>;
  /** The content id computed by the caller (`src/core/configuration-id.ts`). */
  id: string;
  /**
   * Compare-and-set: the revision the caller read. 0 means "create; the configuration must not
   * exist". A different current revision fails with REVISION_CONFLICT (or CONFIGURATION_EXISTS
   * for 0), and nothing is written.
   */
  expectedRevision: number;
  actor: string;
  note?: string;
}

/**
 * A change to a configuration, as `watchConfigurations` delivers it. `seq` orders all events of
 * the store; a deleted configuration yields `type: 'delete'` with no `configuration`.
 */
export type ConfigurationEvent =
  | { type: 'put'; seq: number; name: string; configuration: Configuration }
  | { type: 'delete'; seq: number; name: string };

/** An operator API token or an agent join token. Only the hash of the secret is ever stored. */
export interface TokenRecord {
  /** Public identifier, part of the token text; used to find the record. */
  id: string;
  kind: 'api' | 'join';
  /** For API tokens: admin, deployer or viewer. Join tokens carry 'agent'. */
  role: 'admin' | 'deployer' | 'viewer' | 'agent';
  name: string;
  /** sha256 (hex) of the secret part of the token. */
  secretHash: string;
  createdAt: string;
  createdBy: string;
  revokedAt?: string;
  /** Join tokens only: when it stops being accepted. */
  expiresAt?: string;
}

/** An enrolled agent (filled in by the agent feature; the store only keeps it). */
export interface AgentRecord {
  name: string;
  /** Per-agent revision for compare-and-set, like a configuration's. */
  revision: number;
  labels: Record<string, string>;
  /** The agent's own public key (PEM) it authenticates with after enrolling. */
  publicKey?: string;
  /** Configurations the agent tracks. */
  tracks: string[];
  enrolledAt: string;
  revokedAt?: string;
  /** Inventory and last reported status; opaque to the store. */
  inventory?: Record<string, unknown>;
  status?: Record<string, unknown>;
  /** When the agent last reported (a status report, or its channel connecting or closing). */
  lastSeenAt?: string;
  /** The id of the join token it enrolled with, for the audit trail. */
  joinTokenId?: string;
}

/**
 * An assignment: every agent whose labels match `selector` tracks `configuration`, in addition
 * to the configurations it names itself. Keyed by (configuration, selector); the selector is
 * stored as given, so callers store its canonical text (`src/protocol/selector.ts`).
 */
export interface Assignment {
  configuration: string;
  selector: string;
  createdAt: string;
  createdBy: string;
}

/** One entry of the audit log. */
export interface AuditEntry {
  /** Strictly increasing position in the log. */
  seq: number;
  at: string;
  /** Who: a token id and name, an agent, or `server` for the server's own actions. */
  actor: string;
  /** What, e.g. `configuration.put`. */
  action: string;
  /** What it acted on, e.g. the configuration name. */
  target: string;
  /** `ok`, or the error code it ended with. */
  result: string;
  details?: Record<string, unknown>;
}

/**
 * A host group: a named target for orders, either a fixed list of agent names or a label
 * selector (stored as given; callers store its canonical text). Exactly one of the two is set.
 */
export interface GroupRecord {
  name: string;
  hosts?: string[];
  selector?: string;
  updatedAt: string;
  updatedBy: string;
}

/** How many orders a store keeps by default: creating one more removes the oldest. */
export const ORDER_RETENTION = 10_000;
/** Longest `message` kept per host result, in characters. */
export const ORDER_MESSAGE_MAX_CHARS = 1024;
/** Largest `content` kept per host result, as JSON text in bytes; larger content is replaced by a preview. */
export const ORDER_CONTENT_MAX_BYTES = 8 * 1024;

/** Outcome counts of a finished order; `failed` includes offline and timed-out hosts. */
export interface OrderCounts {
  ok: number;
  failed: number;
  offline: number;
  timedOut: number;
}

/**
 * A fleet order: who sent what to which hosts, and, once finished, each host's result.
 * `args` and `target` are opaque to the store (the API validates them).
 */
export interface OrderRecord {
  /** Unique id chosen by the caller. */
  id: string;
  createdAt: string;
  actor: string;
  args: Record<string, unknown>;
  target: Record<string, unknown>;
  /** The agents the target picked, sorted. */
  hosts: string[];
  /** Set by `finishOrder`. */
  finishedAt?: string;
  summary?: OrderCounts;
  /** Per-host results (bounded, see `finishOrder`); `getOrder` only, never `listOrders`. */
  results?: Record<string, HostResult>;
}

/** What `sweep` removed. */
export interface SweepReport {
  blobsDeleted: string[];
  uploadsRemoved: number;
}

/**
 * A record `importRecord` writes as given (timestamps, authors, revision numbers) where the
 * regular methods would stamp their own: what a migration carries over from another store.
 */
export type ImportRecord =
  | { kind: 'version'; version: ComponentVersion }
  /** Consecutive revisions of one configuration, oldest first (`seq` is the target store's). */
  | { kind: 'history'; revisions: Omit<Configuration, 'seq'>[] }
  | { kind: 'agent'; agent: AgentRecord }
  | { kind: 'assignment'; assignment: Assignment }
  | { kind: 'group'; group: GroupRecord };

/** The persistence contract; see the file's TSDoc for the rules every method follows. */
export interface Store {
  /** Backend name, e.g. `sqlite`. */
  readonly kind: string;

  // ---- blobs ----

  /**
   * Streams bytes in, hashing them on the fly, and makes the blob visible only once its hash is
   * known (and checked against `expectedSha256`) and `beforeCommit` has passed. Uploading bytes
   * that are already stored succeeds and keeps one copy. On any failure, including the source
   * stream failing or the disk filling up (INSUFFICIENT_STORAGE), no partial blob is ever visible
   * and staged bytes are removed.
   */
  putBlob(source: AsyncIterable<Uint8Array>, options?: PutBlobOptions): Promise<BlobInfo>;

  /**
   * Opens a stored blob for reading, optionally a byte range. Throws BLOB_NOT_FOUND if absent.
   * A blob whose bytes no longer match its name is never served as valid: a full read errors
   * with BLOB_CORRUPT before its last byte is delivered, and a range read checks the whole blob
   * first (a backend may remember a successful check while the bytes are unchanged).
   */
  getBlob(sha256: string, range?: ByteRange): Promise<{ info: BlobInfo; stream: Readable }>;

  /** Facts about a blob, or undefined if it is not stored. Does not verify the bytes. */
  statBlob(sha256: string): Promise<BlobInfo | undefined>;

  /** Reads the whole blob and reports whether it still matches its name. Throws BLOB_NOT_FOUND. */
  verifyBlob(sha256: string): Promise<boolean>;

  /** Deletes a blob. Throws IN_USE if a version references it; returns false if it was absent. */
  deleteBlob(sha256: string): Promise<boolean>;

  /**
   * Garbage collection: deletes blobs that no version references and whose latest upload is
   * older than `graceMs` (so an upload waiting for its `addVersion` survives, even when the same
   * bytes were uploaded long ago), and removes staged uploads abandoned for longer than `graceMs`.
   */
  sweep(options: { graceMs: number; now?: Date }): Promise<SweepReport>;

  // ---- components and versions ----

  /**
   * Adds a version. Throws VERSION_EXISTS if the component already has it (versions are
   * immutable) and BLOB_NOT_FOUND if the blob is not stored. The component exists as long as
   * it has a version.
   */
  addVersion(input: { component: string; version: string; blob: string; actor: string }): Promise<ComponentVersion>;

  /** One version, or undefined. */
  getVersion(component: string, version: string): Promise<ComponentVersion | undefined>;

  /** A component's versions, oldest first. Throws COMPONENT_NOT_FOUND if it has none. */
  listVersions(component: string): Promise<ComponentVersion[]>;

  /** All components, sorted by name. */
  listComponents(): Promise<ComponentSummary[]>;

  /**
   * Deletes a version. Throws VERSION_NOT_FOUND if absent and IN_USE (details.configurations)
   * if the current revision of any configuration uses it. The check and the delete are atomic
   * with respect to `putConfiguration`. The blob stays until `sweep`.
   */
  deleteVersion(component: string, version: string): Promise<void>;

  /** Deletes every version of a component, under the same rules as `deleteVersion`, all or nothing. */
  deleteComponent(component: string): Promise<void>;

  // ---- configurations ----

  /** The current revision of a configuration, or undefined. */
  getConfiguration(name: string): Promise<Configuration | undefined>;

  /** The current revision of every configuration, sorted by name. */
  listConfigurations(): Promise<Configuration[]>;

  /**
   * Writes a new revision with compare-and-set on `expectedRevision` (see PutConfigurationInput).
   * Every layer must name an existing version whose blob is still the layer's `blob`
   * (VERSION_NOT_FOUND otherwise: a version deleted and re-added with other bytes is not the
   * same layer), checked atomically with the write so that a concurrent `deleteVersion` cannot
   * leave a dangling layer.
   * Writing a configuration that was deleted starts a new history at revision 1.
   */
  putConfiguration(input: PutConfigurationInput): Promise<Configuration>;

  /**
   * Deletes a configuration and its history. With `expectedRevision`, compare-and-set as in
   * `putConfiguration`. Throws CONFIGURATION_NOT_FOUND if absent.
   */
  deleteConfiguration(name: string, options: { expectedRevision?: number; actor: string }): Promise<void>;

  /** Every revision of a configuration, oldest first. Throws CONFIGURATION_NOT_FOUND if absent. */
  configurationHistory(name: string): Promise<Configuration[]>;

  /**
   * Streams configuration changes. First replays, in `seq` order, the latest event of every
   * configuration with `seq > afterSeq` (a compacted replay: a reader that resumes learns the
   * current state, not every intermediate write), then delivers live events as they are
   * committed, in order, without gaps or duplicates. `afterSeq` 0 replays every existing
   * configuration and no deletions (a reader starting from nothing has nothing to remove); a
   * positive `afterSeq` replays the deletions that happened after it. Ends when `signal` aborts
   * or the store closes.
   */
  watchConfigurations(options: { afterSeq: number; signal: AbortSignal }): AsyncIterable<ConfigurationEvent>;

  // ---- tokens ----

  /** Stores a new token record. Its id must be unique (BAD_REQUEST otherwise). */
  createToken(record: TokenRecord): Promise<void>;

  /** A token record by id, revoked or not, or undefined. */
  getToken(id: string): Promise<TokenRecord | undefined>;

  /** All token records, oldest first. */
  listTokens(): Promise<TokenRecord[]>;

  /** Marks a token revoked. Throws TOKEN_NOT_FOUND; revoking twice keeps the first time. */
  revokeToken(id: string, at: string): Promise<TokenRecord>;

  // ---- agents ----

  /** An agent, or undefined. */
  getAgent(name: string): Promise<AgentRecord | undefined>;

  /** All agents, sorted by name. */
  listAgents(): Promise<AgentRecord[]>;

  /**
   * Writes an agent with compare-and-set: `expectedRevision` 0 creates (fails with
   * REVISION_CONFLICT if it exists), otherwise it must equal the stored revision.
   * Returns the record with its new revision.
   */
  putAgent(record: Omit<AgentRecord, 'revision'>, expectedRevision: number): Promise<AgentRecord>;

  // ---- assignments ----

  /**
   * Adds an assignment. Adding one that exists (same configuration and selector) changes nothing
   * and returns the stored one, with its original `createdAt` and `createdBy`.
   */
  putAssignment(input: { configuration: string; selector: string; actor: string }): Promise<Assignment>;

  /** Removes an assignment; returns false when there was none. */
  deleteAssignment(configuration: string, selector: string): Promise<boolean>;

  /** Every assignment, sorted by configuration, then selector. */
  listAssignments(): Promise<Assignment[]>;

  // ---- groups ----

  /** Creates or replaces a group (exactly one of `hosts` or `selector`); returns it as stored. */
  putGroup(input: { name: string; hosts?: string[]; selector?: string; actor: string }): Promise<GroupRecord>;

  /** A group, or undefined. */
  getGroup(name: string): Promise<GroupRecord | undefined>;

  /** Every group, sorted by name. */
  listGroups(): Promise<GroupRecord[]>;

  /** Removes a group; returns false when there was none. */
  deleteGroup(name: string): Promise<boolean>;

  // ---- orders ----

  /**
   * Records a new, unfinished order; the store sets `createdAt` if absent. Throws BAD_REQUEST if
   * the id exists. Keeps only the newest `keep` orders (default ORDER_RETENTION, in creation
   * order): the oldest beyond that are removed in the same write.
   */
  createOrder(input: Omit<OrderRecord, 'createdAt' | 'finishedAt' | 'summary' | 'results'> & { createdAt?: string }, options?: { keep?: number }): Promise<OrderRecord>;

  /**
   * Records an order's outcome and returns the finished record. Each host's `message` is cut to
   * ORDER_MESSAGE_MAX_CHARS, and a `content` whose JSON exceeds ORDER_CONTENT_MAX_BYTES is replaced
   * by `{ truncated: true, bytes, preview }` (preview: the first ORDER_CONTENT_MAX_BYTES of that JSON),
   * so a record stays bounded. Throws ORDER_NOT_FOUND if absent (or already pruned); finishing
   * twice keeps the first outcome.
   */
  finishOrder(id: string, outcome: { summary: OrderCounts; results: Record<string, HostResult>; finishedAt?: string }): Promise<OrderRecord>;

  /** One order with its results, or undefined. */
  getOrder(id: string): Promise<OrderRecord | undefined>;

  /** Orders newest first, without `results`: at most `limit`, created before order `before` when given. */
  listOrders(options: { limit: number; before?: string }): Promise<OrderRecord[]>;

  // ---- audit ----

  /** Appends an entry; the store assigns `seq` and, if absent, `at`. */
  appendAudit(entry: Omit<AuditEntry, 'seq' | 'at'> & { at?: string }): Promise<AuditEntry>;

  /** Entries with `seq > afterSeq`, oldest first, at most `limit` (newest ones when `newest`). */
  listAudit(options: { afterSeq?: number; limit: number; newest?: boolean }): Promise<AuditEntry[]>;

  // ---- server state ----

  /**
   * Small named values the server keeps for itself (its CA, for instance), shared by every
   * replica. `putStateIfAbsent` writes only when the key is absent and returns the value that is
   * stored afterwards, so concurrent first starts agree on one value.
   */
  getState(key: string): Promise<string | undefined>;
  putStateIfAbsent(key: string, value: string): Promise<string>;
  /** Every server-state entry, by key. */
  listState(): Promise<Record<string, string>>;

  // ---- replay protection ----

  /**
   * Records `key` (CLAIM_KEY) for at least `ttlMs` and resolves true, or false when it is already
   * recorded, across every replica: a signed agent write is accepted once. `ttlMs` is at most
   * CLAIM_MAX_TTL_MS, and a store may remember a key that long whatever `ttlMs` says.
   */
  claimOnce(key: string, ttlMs: number): Promise<boolean>;

  // ---- migration ----

  /**
   * Writes one record as given, for `strata migrate`. A version follows addVersion's rules
   * (VERSION_EXISTS, BLOB_NOT_FOUND) but keeps its times and author. A history must continue the
   * configuration: its first revision is the current one + 1 (REVISION_CONFLICT otherwise), and
   * its last, which becomes current, must pass putConfiguration's layer check (VERSION_NOT_FOUND);
   * earlier revisions are history and may name versions deleted since. Each revision gets a new
   * `seq` of this store, in order. An agent keeps its revision and must not exist
   * (REVISION_CONFLICT). An assignment or group is written as putAssignment or putGroup would,
   * keeping its times and author.
   */
  importRecord(record: ImportRecord): Promise<void>;

  /** Releases files and connections. Idempotent. */
  close(): Promise<void>;
}
