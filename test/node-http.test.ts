/**
 * src/lib/node-http.ts: the agent's module graph loads node:http with `require`, so that Node's
 * fetch implementation (undici, about 9 MiB of RSS) is never loaded into the agent. Each check
 * runs in a fresh node process, and the second shows that the check can see undici at all.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ROOT } from './helpers/strata-server.ts';

/** Runs `imports` as an ES module in a fresh node and answers whether undici got loaded. */
function loadsUndici(imports: string): boolean {
  const code = `${imports}\nprocess.stdout.write(String(process.moduleLoadList.some((entry) => entry.includes('undici'))));`;
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env['PATH'] ?? '' } });
  return JSON.parse(output) as boolean;
}

const source = (file: string): string => JSON.stringify(pathToFileURL(path.join(ROOT, file)).href);

describe('node:http without undici', () => {
  it('loads everything `strata agent` loads without loading undici', () => {
    assert.equal(loadsUndici(`await import(${source('src/cli/run.ts')});\nawait import(${source('src/agent/main.ts')});\nawait import(${source('src/agent/metrics/endpoint.ts')});`), false);
  });

  it('sees undici when node:http is imported as an ES module, so the check above can fail', () => {
    assert.equal(loadsUndici(`await import('node:http');`), true);
    assert.equal(loadsUndici(`await import(${source('src/lib/node-http.ts')});`), false);
  });
});
