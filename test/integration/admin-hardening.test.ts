// The admin API against a hostile browser page and a hostile /stats filter: a regex that
// backtracks for minutes is stopped and the main thread keeps answering /ready; a
// cross-origin or form POST and a rebound Host are refused; the probes server is not
// affected.

import t from 'tap';
import { namedUpstream, request, simpleConfig, startRemora } from '../helpers/remora.js';

const up = await namedUpstream('a');
const config = { ...simpleConfig([up.port], { workers: 1 }), probes: { address: '127.0.0.1', port: 0 } };
const remora = await startRemora(config);
t.teardown(async () => {
  await remora.stop();
  await up.close();
});
const port = remora.adminPort;

t.test('a catastrophic /stats filter is stopped; /ready answers meanwhile', async (t) => {
  const started = Date.now();
  const filtered = request(port, { path: `/stats?filter=${encodeURIComponent('^(?:[a-z_0-9.]+)+!')}`, agent: false });
  await new Promise((r) => setTimeout(r, 100));
  const readyAt = Date.now();
  const ready = await request(port, { path: '/ready', agent: false });
  const readyMs = Date.now() - readyAt;
  t.equal(ready.status, 200, '/ready answers while the filter runs');
  t.ok(readyMs < 500, `and quickly (${readyMs} ms; the filter runs off the main thread)`);
  const res = await filtered;
  const took = Date.now() - started;
  t.equal(res.status, 400, `the filter is refused with 400 (${res.text.trim()})`);
  t.match(res.text, /ran longer than 1000 ms/, 'saying it ran too long');
  t.ok(took < 5000, `within the time limit, not minutes (${took} ms)`);
  const ok = await request(port, { path: '/stats?filter=cluster%5C.up%5C.upstream_cx_total', agent: false });
  t.equal(ok.status, 200, 'an ordinary filter still works');
  t.match(ok.text, /^cluster\.up\.upstream_cx_total: \d+\n$/, `and returns just the matching stat (${JSON.stringify(ok.text)})`);
  t.equal((await request(port, { path: '/stats?filter=(', agent: false })).status, 400, 'a filter that does not compile is a 400');
});

t.test('browser-originated state changes are refused and change nothing', async (t) => {
  const cross = await request(port, { method: 'POST', path: '/healthcheck/fail', headers: { origin: 'http://evil.example', 'content-type': 'text/plain' }, body: 'x', agent: false });
  t.equal(cross.status, 403, `a cross-origin POST /healthcheck/fail is 403 (${cross.text.trim()})`);
  const form = await request(port, { method: 'POST', path: '/healthcheck/fail', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1', agent: false });
  t.equal(form.status, 403, `a form POST without Origin is 403 too (${form.text.trim()})`);
  t.equal((await request(port, { path: '/ready', agent: false })).status, 200, 'the health state did not change: /ready is still 200');
  const plain = await request(port, { method: 'POST', path: '/healthcheck/fail', agent: false });
  t.equal(plain.status, 200, 'a plain POST, as curl -X POST sends it, works');
  t.equal((await request(port, { path: '/ready', agent: false })).status, 503, 'and fails the health check');
  t.equal((await request(port, { method: 'POST', path: '/healthcheck/ok', agent: false })).status, 200, 'POST /healthcheck/ok restores it');
});

t.test('a Host that is not an IP or localhost is refused (DNS rebinding)', async (t) => {
  const rebound = await request(port, { path: '/config_dump', headers: { host: `evil.example:${port}` }, agent: false });
  t.equal(rebound.status, 403, `GET /config_dump with Host evil.example is 403 (${rebound.text.trim()})`);
  t.notMatch(rebound.text, /clusters/, 'and carries none of the config');
  t.equal((await request(port, { path: '/config_dump', headers: { host: `localhost:${port}` }, agent: false })).status, 200, 'Host localhost is served');
  t.equal((await request(port, { path: '/config_dump', agent: false })).status, 200, 'Host 127.0.0.1 is served');
  const probes = await request(remora.probesPort!, { path: '/ready', headers: { host: 'remora.mesh.svc:9902' }, agent: false });
  t.equal(probes.status, 200, 'the probes server (read-only, for the pod network) answers any Host');
});
