// Every metric family a running Remora exposes on /metrics is described in
// docs/metrics.md: scraped from a real process after traffic (listener, cluster, worker,
// process and Node.js families), compared by name with the document.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { admin, namedUpstream, request, simpleConfig, startRemora } from '../helpers/remora.js';
import { repoPath } from '../helpers/repo-root.js';

/** Family names from the exposition's `# TYPE name kind` lines. */
function families(exposition: string): string[] {
  const names: string[] = [];
  for (const line of exposition.split('\n')) {
    const m = /^# TYPE (\S+) \S+$/.exec(line);
    if (m !== null) names.push(m[1]);
  }
  return names;
}

t.test('every family on /metrics is in docs/metrics.md', async (t) => {
  const up = await namedUpstream('docs');
  t.teardown(async () => { await up.close(); });
  const remora = await startRemora(simpleConfig([up.port], { workers: 2 }));
  t.teardown(async () => { await remora.stop(); });
  for (let i = 0; i < 20; i++) await request(remora.ports.main, { path: `/r${i}` });
  await request(remora.ports.main, { path: '/', headers: { host: 'bad host' } }).catch(() => undefined);

  const scraped = families((await admin(remora.adminPort, '/metrics')).text);
  t.ok(scraped.length > 30, `the scrape has the usual families (saw ${scraped.length})`);
  const doc = readFileSync(repoPath('docs/metrics.md'), 'utf8');
  // A family is documented when its name appears as a word in the document (tables and
  // prose both count; histograms by their family name, not _bucket/_sum/_count).
  const missing = scraped.filter((name) => !new RegExp(`\\b${name}\\b`).test(doc));
  t.same(missing, [], 'expected every scraped family to be named in docs/metrics.md; these are not');
});
