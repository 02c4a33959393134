/** The embedded store upgrades older databases in place, keeping their data: schema 2 (before groups and orders) and 3 (before claims). */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { SCHEMA_VERSION } from '../src/store/sqlite/schema.ts';
import { tempDir } from './helpers/temp-dir.ts';

it('migrates schema 2 to the current one: groups, orders and claims appear, existing rows stay', async (t) => {
  const dir = await tempDir(t);
  const first = await openSqliteStore({ dir });
  await first.putAssignment({ configuration: 'site', selector: 'role=web', actor: 'alice' });
  await first.close();
  // Turn it back into what Strata with schema 2 wrote.
  const db = new DatabaseSync(join(dir, 'strata.db'));
  db.exec('DROP TABLE groups; DROP TABLE orders; DROP TABLE claims; DELETE FROM schema_version WHERE version > 2');
  db.close();

  const store = await openSqliteStore({ dir });
  t.after(() => store.close());
  assert.equal(SCHEMA_VERSION, 4);
  assert.deepEqual((await store.listAssignments()).map((a) => a.selector), ['role=web']);
  await store.putGroup({ name: 'web', hosts: ['web-1'], actor: 'alice' });
  await store.createOrder({ id: 'o1', actor: 'alice', args: { verb: 'ping' }, target: { all: true }, hosts: [] });
  assert.equal((await store.listOrders({ limit: 5 })).length, 1);
  assert.equal(await store.claimOnce('sig', 60_000), true);
  const check = new DatabaseSync(join(dir, 'strata.db'), { readOnly: true });
  assert.equal(check.prepare('SELECT MAX(version) AS v FROM schema_version').get()?.['v'], 4);
  check.close();
});

it('forgets a claim once it expires, and purges expired claims as new ones come', async (t) => {
  const { claimOnce } = await import('../src/store/sqlite/claims.ts');
  const { openDatabase } = await import('../src/store/sqlite/database.ts');
  const dir = await tempDir(t);
  await (await openSqliteStore({ dir })).close();
  const database = openDatabase(join(dir, 'strata.db'));
  t.after(() => database.db.close());
  const now = 1_000_000;
  assert.equal(claimOnce(database, 'old', 1000, now), true);
  assert.equal(claimOnce(database, 'old', 1000, now + 999), false, 'still claimed');
  assert.equal(claimOnce(database, 'old', 1000, now + 1000), true, 'expired: claimable again');
  for (let index = 0; index < 40; index += 1) claimOnce(database, `k${index}`, 10, now);
  claimOnce(database, 'late-1', 1000, now + 5000);
  claimOnce(database, 'late-2', 1000, now + 5000);
  claimOnce(database, 'late-3', 1000, now + 5000);
  const rows = Number(database.sql('SELECT COUNT(*) AS n FROM claims').get()?.['n']);
  assert.ok(rows <= 4, `expired claims were purged as new ones came: ${rows} rows left`);
});
