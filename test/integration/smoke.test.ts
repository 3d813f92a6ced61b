// End to end through the real proxy: one upstream, one worker, a GET and a POST.
import t from 'tap';
import { namedUpstream, request, simpleConfig, startRemora } from '../helpers/remora.js';

t.test('forwards a GET and a POST through a real worker', async (t) => {
  const up = await namedUpstream('a');
  const remora = await startRemora(simpleConfig([up.port]));
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const port = remora.ports.main;
  const get = await request(port, { path: '/x' });
  t.equal(get.status, 200, 'GET status');
  t.equal(get.text, 'a', 'GET body from the upstream');
  const post = await request(port, { method: 'POST', path: '/x', body: 'hello' });
  t.equal(post.status, 200, 'POST status');
  const stopped = await remora.stop();
  t.same(stopped, { code: 0, signal: null }, 'SIGTERM ends the process with exit code 0');
});
