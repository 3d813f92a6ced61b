// A TCP listener's filter chains picked by the client's address (`source_prefix_ranges`,
// `source_ports`, `source_type`), in a real Remora process behind the PROXY protocol, which
// names the client: the chain with the longest range containing the client's address takes
// the connection (IPv4 and IPv6), a named port narrows further, a client no chain names
// goes to the default chain, and the direct peer (127.0.0.1, loopback) is what
// `direct_source_prefix_ranges` and `source_type` see without a header. The same chains
// from xDS (prefix ranges as CidrRange) are accepted and round-trip.

import t from 'tap';
import { toXdsResources } from '../../src/xds/encode.js';
import { translateXds } from '../../src/xds/translate.js';
import { startRemora } from '../helpers/remora.js';
import { exchange, startRecorder } from '../helpers/tcp-peers.js';
import { baseOf, errorsOf, rewire, valid } from '../helpers/xds.js';

const names = ['wide', 'narrow', 'port', 'v6', 'other', 'loopback', 'external'] as const;
const peers = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await startRecorder(n)] as const)));
t.teardown(async () => {
  await Promise.all(Object.values(peers).map((p) => p.close()));
});

const chain = (name: string, match: Record<string, unknown>) => ({ name, match, tcp_proxy: { cluster: name } });
const config = {
  workers: 1,
  admin: { address: '127.0.0.1', port: 0 },
  listeners: [
    {
      name: 'behind-lb', address: '127.0.0.1', port: 0, proxy_protocol: true,
      tcp_proxy: { cluster: 'other' },
      filter_chains: [
        chain('wide', { source_prefix_ranges: ['10.0.0.0/8'] }),
        chain('narrow', { source_prefix_ranges: ['10.1.0.0/16'] }),
        chain('port', { source_prefix_ranges: ['10.1.0.0/16'], source_ports: [5555] }),
        chain('v6', { source_prefix_ranges: ['fd00::/8'] }),
      ],
    },
    {
      name: 'direct', address: '127.0.0.1', port: 0,
      filter_chains: [chain('loopback', { source_type: 'same_ip_or_loopback' }), chain('external', { source_type: 'external' })],
    },
  ],
  clusters: names.map((name) => ({ name, endpoints: [{ address: '127.0.0.1', port: peers[name].port }] })),
};

t.test('chains by the client\'s address, behind the PROXY protocol', async (t) => {
  const remora = await startRemora(config);
  t.teardown(() => remora.stop());
  /** The name of the upstream a connection from `source:port` reached. */
  const upstreamFor = async (header: string): Promise<string> => {
    const r = await exchange(remora.ports['behind-lb'], `${header}\r\nping`, { wait: (b) => b.toString().endsWith('ping') });
    return r.data.toString().split('\n')[0];
  };
  const seen: [string, string][] = [];
  for (const header of ['PROXY TCP4 10.1.2.3 10.0.0.1 40000 80', 'PROXY TCP4 10.1.2.3 10.0.0.1 5555 80', 'PROXY TCP4 10.9.9.9 10.0.0.1 5555 80',
    'PROXY TCP4 192.0.2.1 10.0.0.1 40000 80', 'PROXY TCP6 fd00::1 fd00::2 40000 80', 'PROXY TCP6 2001:db8::1 fd00::2 40000 80']) {
    seen.push([header, await upstreamFor(header)]);
  }
  t.same(seen, [
    ['PROXY TCP4 10.1.2.3 10.0.0.1 40000 80', 'narrow'],
    ['PROXY TCP4 10.1.2.3 10.0.0.1 5555 80', 'port'],
    ['PROXY TCP4 10.9.9.9 10.0.0.1 5555 80', 'wide'],
    ['PROXY TCP4 192.0.2.1 10.0.0.1 40000 80', 'other'],
    ['PROXY TCP6 fd00::1 fd00::2 40000 80', 'v6'],
    ['PROXY TCP6 2001:db8::1 fd00::2 40000 80', 'other'],
  ], 'expected the longest range holding the header\'s source, then its port, to pick the chain; the default chain otherwise');
  const direct = await exchange(remora.ports.direct, 'ping', { wait: (b) => b.toString().endsWith('ping') });
  t.equal(direct.data.toString().split('\n')[0], 'loopback', 'expected a client on 127.0.0.1 to be same_ip_or_loopback');
});

t.test('the same chains from xDS, and back', async (t) => {
  const remoraConfig = valid(config);
  const back = translateXds(baseOf(remoraConfig), rewire(toXdsResources(remoraConfig, { edsForAllClusters: true })));
  t.same(errorsOf(back), []);
  if (back.ok) t.strictSame(back.config.listeners, remoraConfig.listeners, 'expected address matches to round-trip through CidrRange');
});
