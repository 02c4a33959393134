/** Enrolled agents, written with compare-and-set on a per-agent revision. */
import { StrataError } from '../../core/errors.ts';
import type { AgentRecord } from '../contract.ts';
import { inTransaction, type Database } from './database.ts';
import { integer, text, type Row } from './rows.ts';

/** An agent, or undefined. */
export function getAgent(database: Database, name: string): AgentRecord | undefined {
  const row = database.sql('SELECT revision, record FROM agents WHERE name = ?').get(name);
  return row === undefined ? undefined : agentFromRow(row);
}

/** Every agent, sorted by name. */
export function listAgents(database: Database): AgentRecord[] {
  return database.sql('SELECT revision, record FROM agents ORDER BY name').all().map(agentFromRow);
}

/** Writes an agent if `expectedRevision` is its stored revision (0: it must not exist). */
export function putAgent(database: Database, record: Omit<AgentRecord, 'revision'>, expectedRevision: number): AgentRecord {
  return inTransaction(database, () => {
    const row = database.sql('SELECT revision FROM agents WHERE name = ?').get(record.name);
    const current = row === undefined ? 0 : integer(row, 'revision');
    if (current !== expectedRevision) {
      throw new StrataError('REVISION_CONFLICT', `agent ${record.name} is at revision ${current}, not ${expectedRevision}`, {
        details: { name: record.name, expectedRevision, currentRevision: current },
      });
    }
    // A caller may pass a full AgentRecord; its stale revision must not be stored.
    const { revision: _ignored, ...fields } = record as AgentRecord;
    const written: AgentRecord = { ...fields, revision: current + 1 };
    database
      .sql('INSERT INTO agents (name, revision, record) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET revision = excluded.revision, record = excluded.record')
      .run(written.name, written.revision, JSON.stringify(fields));
    return written;
  });
}

/** Converts an `agents` row to an AgentRecord. */
function agentFromRow(row: Row): AgentRecord {
  return { ...(JSON.parse(text(row, 'record')) as Omit<AgentRecord, 'revision'>), revision: integer(row, 'revision') };
}
