/** The server's per-agent metrics history (its bounds) and how `strata top` sorts and renders rows. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MetricsHistory } from '../src/server/metrics/history.ts';
import { METRICS_SUMMARY_VERSION, type MetricsSummary, type TopRow } from '../src/protocol/metrics.ts';
import { sortRows, topTable } from '../src/cli/commands/top.ts';

function summary(cpu: number, memUsed = 1, load1 = 0, diskUsed = 1): MetricsSummary {
  return {
    v: METRICS_SUMMARY_VERSION, at: new Date(1_700_000_000_000 + cpu * 1000).toISOString(), intervalMs: 10_000, cpu, cores: 2,
    load: [load1, 0, 0], mem: { used: memUsed, total: 100 }, swap: { used: 0, total: 0 },
    disk: { root: { mount: '/', used: diskUsed, total: 100 }, fullest: { mount: '/', used: diskUsed, total: 100 } },
    net: { rx: 0, tx: 0 }, io: { read: 0, write: 0 }, uptime: 60, services: [],
  };
}

test('the history keeps the newest summaries per agent, shrinks for a large fleet, and drops floods', () => {
  const history = new MetricsHistory({ keep: 3, maxTotal: 4, minSpacingMs: 500 });
  let now = 0;
  for (let i = 1; i <= 5; i++) assert.equal(history.record('a', summary(i), (now += 1000)), true);
  assert.deepEqual(history.history('a').map((s) => s.cpu), [3, 4, 5]);
  assert.equal(history.latest('a')?.cpu, 5);
  assert.equal(history.record('a', summary(99), now + 100), false, 'too soon after the last one');
  assert.equal(history.latest('a')?.cpu, 5);
  // Two agents share maxTotal = 4: two each from now on.
  history.record('b', summary(1), (now += 1000));
  assert.equal(history.perAgent, 2);
  history.record('a', summary(6), (now += 1000));
  assert.deepEqual(history.history('a').map((s) => s.cpu), [5, 6]);
  history.forget('a');
  assert.deepEqual(history.history('a'), []);
  assert.equal(history.size, 1);
});

test('strata top sorts by the chosen metric, highest first, agents without metrics last', () => {
  const row = (name: string, metrics: MetricsSummary | null): TopRow => ({ name, labels: {}, online: metrics !== null, metrics, configurations: [] });
  const rows = [row('c', summary(10, 90, 0.1, 10)), row('a', null), row('b', summary(50, 10, 2, 95)), row('d', summary(50, 20, 1, 50))];
  assert.deepEqual(sortRows(rows, 'cpu').map((r) => r.name), ['b', 'd', 'c', 'a']);
  assert.deepEqual(sortRows(rows, 'mem').map((r) => r.name), ['c', 'd', 'b', 'a']);
  assert.deepEqual(sortRows(rows, 'load').map((r) => r.name), ['b', 'd', 'c', 'a']);
  assert.deepEqual(sortRows(rows, 'disk').map((r) => r.name), ['b', 'd', 'c', 'a']);
  assert.deepEqual(sortRows(rows, 'name').map((r) => r.name), ['a', 'b', 'c', 'd']);
  const lines = topTable({ agents: rows }, 'name').split('\n');
  assert.match(lines[1]!, /^a\s+no\s+-\s+-\s+-\s+-\s+-\s+-\s+-$/);
  assert.match(lines[2]!, /^b\s+yes\s+50\.0%\s+2\.00 0\.00 0\.00\s+10% of 100 B\s+95% of 100 B \/\s+0 B\/s \/ 0 B\/s\s+-\s+-$/);
});
