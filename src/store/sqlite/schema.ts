/**
 * The metadata schema and its version. Every statement is idempotent, so opening an existing
 * database re-applies nothing; later schema changes add numbered steps.
 */
import type { DatabaseSync } from 'node:sqlite';

/** The schema version this code writes. */
export const SCHEMA_VERSION = 4;

const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS blobs (
  sha256 TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  -- sweep's grace period counts from the latest upload, so re-uploading an old unreferenced
  -- blob right before addVersion protects it again.
  uploaded_at TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS versions (
  -- insertion order is the "oldest first" order of listVersions, even within one millisecond.
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  component TEXT NOT NULL,
  version TEXT NOT NULL,
  blob TEXT NOT NULL REFERENCES blobs(sha256),
  size INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  created_by TEXT NOT NULL,
  UNIQUE (component, version)
) STRICT;
CREATE INDEX IF NOT EXISTS versions_by_blob ON versions(blob);

CREATE TABLE IF NOT EXISTS configuration_events (
  -- AUTOINCREMENT never reuses a seq, even after the newest event row is pruned.
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('put', 'delete'))
) STRICT;
CREATE INDEX IF NOT EXISTS configuration_events_by_name ON configuration_events(name);

CREATE TABLE IF NOT EXISTS configuration_revisions (
  name TEXT NOT NULL,
  revision INTEGER NOT NULL,
  seq INTEGER NOT NULL UNIQUE,
  id TEXT NOT NULL,
  layers TEXT NOT NULL,
  settings TEXT,
  updated_at TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  note TEXT,
  PRIMARY KEY (name, revision)
) STRICT;

CREATE TABLE IF NOT EXISTS configuration_heads (
  name TEXT PRIMARY KEY,
  revision INTEGER NOT NULL
) STRICT;

-- The layers of each configuration's current revision, so "is this version in use" is one
-- indexed lookup; the foreign key backs up the IN_USE check.
CREATE TABLE IF NOT EXISTS configuration_layers (
  name TEXT NOT NULL REFERENCES configuration_heads(name) ON DELETE CASCADE,
  component TEXT NOT NULL,
  version TEXT NOT NULL,
  PRIMARY KEY (name, component),
  FOREIGN KEY (component, version) REFERENCES versions(component, version)
) STRICT;
CREATE INDEX IF NOT EXISTS configuration_layers_by_version ON configuration_layers(component, version);

CREATE TABLE IF NOT EXISTS tokens (
  position INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  record TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS agents (
  name TEXT PRIMARY KEY,
  revision INTEGER NOT NULL,
  record TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  result TEXT NOT NULL,
  details TEXT
) STRICT;

CREATE TABLE IF NOT EXISTS state (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
`;

// Version 2: selector assignments (configuration → agents whose labels match).
const SCHEMA_V2 = `
CREATE TABLE IF NOT EXISTS assignments (
  configuration TEXT NOT NULL,
  selector TEXT NOT NULL,
  created_at TEXT NOT NULL,
  created_by TEXT NOT NULL,
  PRIMARY KEY (configuration, selector)
) STRICT;
`;

// Version 3: host groups and fleet orders (the newest ORDER_RETENTION kept, pruned by seq).
const SCHEMA_V3 = `
CREATE TABLE IF NOT EXISTS groups (
  name TEXT PRIMARY KEY,
  record TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS orders (
  -- creation order, for "newest first" and pruning, even within one millisecond.
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  record TEXT NOT NULL,
  results TEXT
) STRICT;
`;

// Version 4: claims of signed agent writes already accepted (replay protection), with their expiry.
const SCHEMA_V4 = `
CREATE TABLE IF NOT EXISTS claims (
  key TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS claims_by_expiry ON claims(expires_at);
`;

/** Creates the tables if missing and refuses a database written by a newer Strata. */
export function applySchema(db: DatabaseSync): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT');
    const row = db.prepare('SELECT MAX(version) AS version FROM schema_version').get();
    const current = typeof row?.['version'] === 'number' ? row['version'] : 0;
    if (current > SCHEMA_VERSION) {
      throw new Error(`the database has schema version ${current}; this Strata understands up to ${SCHEMA_VERSION}`);
    }
    db.exec(SCHEMA_V1);
    db.exec(SCHEMA_V2);
    db.exec(SCHEMA_V3);
    db.exec(SCHEMA_V4);
    if (current < SCHEMA_VERSION) db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SCHEMA_VERSION);
    db.exec('COMMIT');
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}
