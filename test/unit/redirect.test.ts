// The Location of a redirect route (src/router/redirect.ts), case by case against
// Envoy's RedirectAction rules.

import t from 'tap';
import { compileRedirect, redirectLocation } from '../../src/router/redirect.js';
import type { Redirect } from '../../src/config/types.js';

const r = (o: Partial<Redirect>) => compileRedirect({ response_code: 301, strip_query: false, ...o });

t.test('scheme and port', async (t) => {
  t.equal(redirectLocation(r({ scheme: 'http' }), 'https', 'a.example:443', '/p', '', '/'), 'http://a.example/p', 'https → http drops :443');
  t.equal(redirectLocation(r({ scheme: 'http' }), 'https', 'a.example:80', '/p', '', '/'), 'http://a.example:80/p', 'https → http keeps :80 (not the old scheme\'s default)');
  t.equal(redirectLocation(r({ scheme: 'https' }), 'https', 'a.example:443', '/p', '', '/'), 'https://a.example:443/p', 'same scheme: the port is kept');
  t.equal(redirectLocation(r({ port: 9000 }), 'http', 'a.example:8080', '/p', '', '/'), 'http://a.example:9000/p', 'port replaced');
  t.equal(redirectLocation(r({ port: 9000 }), 'http', 'a.example', '/p', '', '/'), 'http://a.example:9000/p', 'port added');
  t.equal(redirectLocation(r({ port: 9000 }), 'http', '[::1]', '/p', '', '/'), 'http://[::1]:9000/p', 'an IPv6 host without a port');
  t.equal(redirectLocation(r({ host: 'b.example:1', port: 2 }), 'http', 'a.example:3', '/p', '', '/'), 'http://b.example:1:2/p', 'host given: taken as written, then the port (as Envoy)');
});

t.test('path and query', async (t) => {
  t.equal(redirectLocation(r({ prefix_rewrite: '' }), 'http', 'a', '/old', 'x=1', '/old'), 'http://a/?x=1', 'an empty rewrite of the whole path gives "/"');
  t.equal(redirectLocation(r({ prefix_rewrite: 'v2/' }), 'http', 'a', '/api/x', '', '/api/'), 'http://a/v2/x', 'a path not starting with "/" gets one');
  t.equal(redirectLocation(r({ strip_query: true }), 'http', 'a', '/p', 'x=1', '/'), 'http://a/p', 'strip_query');
  t.equal(redirectLocation(r({ path: '/n?y=2', strip_query: true }), 'http', 'a', '/p', 'x=1', '/'), 'http://a/n?y=2', 'the redirect path\'s own query wins');
  t.equal(redirectLocation(r({}), 'http', 'a', '/p', '', '/'), 'http://a/p', 'nothing replaced: the same URL (a loop the config asked for)');
});
