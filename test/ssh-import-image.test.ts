/**
 * `import-image` on the deploy-tools SSH front: `docker save` output piped into
 * `ssh HOST import-image`, imported by the same importer as `strata import-image`, audited as the
 * key, and readable by deploy-agent as configs/NAME.json; bad archives and limits refused.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { runStrata } from './helpers/strata-server.ts';
import { legacyArchive, ociArchive } from './helpers/image-archive.ts';
import { startSshServer } from './helpers/ssh.ts';
import { tempDir } from './helpers/temp-dir.ts';

describe('deploy-tools SSH front: import-image', () => {
  it('imports docker save output from the exec channel, as the CLI would, and refuses bad input', async (t) => {
    const root = await tempDir(t);
    const front = await startSshServer(root);
    t.after(() => front.server.stop());
    const image = legacyArchive({
      ref: 'shop/web:1.2',
      layers: [[{ path: 'app/', type: 'dir' }, { path: 'app/old.txt', content: 'old' }, { path: 'app/run', content: '#!/bin/sh\n', mode: 0o755 }], [{ path: 'app/.wh.old.txt', content: '' }, { path: 'app/new.txt', content: 'new' }]],
      config: { Entrypoint: ['/app/run'], Env: ['MODE=prod'], WorkingDir: '/app' },
    });

    const imported = await front.ssh(['import-image'], { input: image });
    assert.equal(imported.code, 0, imported.stderr);
    const lines = imported.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^shop\.web\.1\.2\.l0:[0-9a-f]{64} {3}added {3}\d+ entries, /);
    assert.match(lines[2]!, /^imported shop\/web:1\.2 \(docker layout\) as configuration shop\.web\.1\.2: revision 1 \(id [0-9a-f]{64}\)$/);

    const again = await front.ssh(['import-image -name=shop.web.1.2'], { input: image });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /unchanged at revision 1/, 'importing the same image again changes nothing');

    const shown = await front.ssh(['showconf -name shop.web.1.2 -v']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /\nImage:\tshop\/web:1\.2\nEntrypoint:\t\["\/app\/run"\]\n/);
    const viaCli = await runStrata(['showconf', '--name', 'shop.web.1.2', '-v'], front.server.env);
    assert.equal(shown.stdout, viaCli.stdout, 'console and CLI print the same');

    const local = path.join(root, 'web.json');
    assert.equal((await front.fetch('configs/shop.web.1.2.json', local)).code, 0);
    const doc = JSON.parse(await readFile(local, 'utf8')) as { Layers: { Name: string }[] };
    assert.deepEqual(doc.Layers.map((l) => l.Name), ['shop.web.1.2.l0', 'shop.web.1.2.l1']);

    const audit = JSON.parse((await runStrata(['audit', '--json'], front.server.env)).stdout) as { entries: { actor: string; action: string; target: string }[] };
    assert.ok(audit.entries.some((e) => e.actor.startsWith('ssh:SHA256:') && e.action === 'configuration.put' && e.target === 'shop.web.1.2'));

    const oci = await front.ssh(['import-image', '-name', 'ociapp'], { input: ociArchive({ ref: 'x/y:1', layers: [[{ path: 'f', content: 'f' }]] }, { gzip: true }) });
    assert.equal(oci.code, 0, oci.stderr);
    assert.match(oci.stdout, /as configuration ociapp: revision 1/);

    const garbage = await front.ssh(['import-image', '-name', 'junk'], { input: randomBytes(4096) });
    assert.equal(garbage.code, 1);
    assert.match(garbage.stderr, /^[^\n]+\n$/, 'one line');
    const tooBig = await front.ssh(['import-image', '-name', 'big', '-max-bytes', '1KiB'], { input: image });
    assert.equal(tooBig.code, 1);
    assert.equal(tooBig.stderr, 'the image archive is larger than the limit of 1024 bytes\n');
    const raised = await front.ssh(['import-image', '-max-layers', '100000'], { input: image });
    assert.deepEqual(raised, { code: 1, stdout: '', stderr: "-max-layers may not exceed the server's limit of 128\n" });
    const interactive = await front.ssh([], { input: 'import-image -name x\n' });
    assert.match(interactive.stderr, /^import-image reads the image from the session's input/);
    assert.deepEqual(await front.ssh(['configurations']), { code: 0, stdout: 'ociapp\nshop.web.1.2\n', stderr: '' }, 'refused imports left nothing');
  });
});
