// The admin API's browser guard (src/main/admin/request-guard.ts): which Host, Origin
// and content type a request may carry.

import t from 'tap';
import { adminRefusal, hostName } from '../../src/main/admin/request-guard.js';

t.test('hostName strips the port and IPv6 brackets', async (t) => {
  t.equal(hostName('127.0.0.1:9901'), '127.0.0.1');
  t.equal(hostName('[::1]:9901'), '::1');
  t.equal(hostName('LocalHost'), 'localhost');
  t.equal(hostName('evil.example:80'), 'evil.example');
});

t.test('Host: IP addresses and localhost are served, other names refused', async (t) => {
  for (const host of ['127.0.0.1:9901', '127.0.0.1', '[::1]:9901', '10.1.2.3:9901', 'localhost:9901', 'localhost', 'app.localhost:9901']) {
    t.equal(adminRefusal('GET', { host }), null, `GET with Host ${host} is served`);
  }
  t.equal(adminRefusal('GET', {}), null, 'no Host (HTTP/1.0) is served');
  for (const host of ['evil.example', 'evil.example:9901', 'localhost.evil.example', '127.0.0.1.nip.io:9901']) {
    const why = adminRefusal('GET', { host });
    t.match(why, /neither an IP address nor localhost/, `GET with Host ${host} is refused (${why})`);
  }
});

t.test('state-changing requests: no Origin, no form content types', async (t) => {
  const host = '127.0.0.1:9901';
  t.equal(adminRefusal('POST', { host }), null, 'a plain POST (curl -X POST) is served');
  t.equal(adminRefusal('POST', { host, 'content-type': 'application/json' }), null, 'a JSON POST is served (browsers preflight it)');
  t.match(adminRefusal('POST', { host, origin: 'http://evil.example' }), /Origin header/, 'a POST with an Origin is refused');
  t.match(adminRefusal('POST', { host, origin: 'null' }), /Origin header/, 'also Origin: null (sandboxed pages)');
  for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    t.match(adminRefusal('POST', { host, 'content-type': type }), /content type/, `a POST with content type ${type} is refused`);
  }
  t.equal(adminRefusal('GET', { host, origin: 'http://evil.example' }), null, 'an Origin on a read does not matter (rebinding is what the Host check stops)');
});
