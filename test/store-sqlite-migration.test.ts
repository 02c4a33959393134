/** The embedded store upgrades a schema-2 database (before groups and orders) in place, keeping its data. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { SCHEMA_VERSION } from '../src/store/sqlite/schema.ts';
import { tempDir } from './helpers/temp-dir.ts';

it('migrates schema 2 to 3: groups and orders appear, existing rows stay', async (t) => {
  const dir = await tempDir(t);
  const first = await openSqliteStore({ dir });
  await first.putAssignment({ configuration: 'site', selector: 'role=web', actor: 'alice' });
  await first.close();
  // Turn it back into what Strata with schema 2 wrote.
  const db = new DatabaseSync(join(dir, 'strata.db'));
  db.exec('DROP TABLE groups; DROP TABLE orders; DELETE FROM schema_version WHERE version > 2');
  db.close();

  const store = await openSqliteStore({ dir });
  t.after(() => store.close());
  assert.equal(SCHEMA_VERSION, 3);
  assert.deepEqual((await store.listAssignments()).map((a) => a.selector), ['role=web']);
  await store.putGroup({ name: 'web', hosts: ['web-1'], actor: 'alice' });
  await store.createOrder({ id: 'o1', actor: 'alice', args: { verb: 'ping' }, target: { all: true }, hosts: [] });
  assert.equal((await store.listOrders({ limit: 5 })).length, 1);
  const check = new DatabaseSync(join(dir, 'strata.db'), { readOnly: true });
  assert.equal(check.prepare('SELECT MAX(version) AS v FROM schema_version').get()?.['v'], 3);
  check.close();
});
