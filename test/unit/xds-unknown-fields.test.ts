// Unknown fields of xDS resources (src/xds/unknown-fields.ts): field numbers Remora's
// protos lack, found by walking the wire bytes against the descriptors, at the top of a
// resource, deep in nested messages and inside an Any (the HttpConnectionManager of a
// listener), each named by path; resources as Remora encodes them have none.

import t from 'tap';
import { toXdsResources } from '../../src/xds/encode.js';
import { TypeUrl, type AnyMessage } from '../../src/xds/protos.js';
import { unknownFields } from '../../src/xds/unknown-fields.js';
import { arr, obj, protos, valid } from '../helpers/xds.js';

const CONFIG = valid({
  listeners: [{ name: 'in', address: '127.0.0.1', port: 0, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] }] }],
  clusters: [{ name: 'up', endpoints: [{ address: '127.0.0.1', port: 9 }], circuit_breakers: { max_connections: 10 } }],
});

/** `bytes` with a field appended: a varint (wire type 0) or a string (wire type 2). */
function withField(bytes: Uint8Array, number: number, value: number | string): Uint8Array {
  const varint = (n: number): number[] => {
    const out: number[] = [];
    while (n >= 0x80) {
      out.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    out.push(n);
    return out;
  };
  const extra = typeof value === 'number'
    ? [...varint(number * 8), ...varint(value)]
    : [...varint(number * 8 + 2), ...varint(Buffer.byteLength(value)), ...Buffer.from(value)];
  return Buffer.concat([Buffer.from(bytes), Buffer.from(extra)]);
}

t.test('unknown fields, by path', async (t) => {
  const r = toXdsResources(CONFIG, { edsForAllClusters: false });
  const listener = r.listeners.get('in')!;
  const clean = protos.encodeAny(TypeUrl.Listener, listener).value;
  t.same(unknownFields(TypeUrl.Listener, clean), [], 'a listener as Remora encodes it: none');
  const cluster = protos.encodeAny(TypeUrl.Cluster, r.clusters.get('up')!).value;
  t.same(unknownFields(TypeUrl.Cluster, cluster), [], 'a cluster: none');

  t.same(unknownFields(TypeUrl.Listener, withField(clean, 9999, 1)), ['#9999'], 'a top-level field number the protos lack');

  // Inside the HttpConnectionManager, an Any in filter_chains[0].filters[0].typed_config.
  const edited = structuredClone(listener);
  const filter = obj(arr(arr(edited.filter_chains)[0].filters)[0]);
  const hcm = filter.typed_config as AnyMessage;
  filter.typed_config = { type_url: hcm.type_url, value: withField(hcm.value, 8888, 'x') };
  t.same(unknownFields(TypeUrl.Listener, protos.encodeAny(TypeUrl.Listener, edited).value), ['filter_chains.filters.typed_config(HttpConnectionManager).#8888'], 'inside an Any');

  // Deep in nested messages: Cluster.circuit_breakers (10) → CircuitBreakers.thresholds (1).
  // Thresholds { max_connections (2): UInt32Value { value (1): 5 } }, then field 7777.
  const thresholds = withField(Buffer.from([(2 << 3) | 2, 2, (1 << 3) | 0, 5]), 7777, 3);
  const breakers = Buffer.concat([Buffer.from([(1 << 3) | 2, thresholds.length]), thresholds]);
  const deep = Buffer.concat([Buffer.from(cluster), Buffer.from([(10 << 3) | 2, breakers.length]), breakers]);
  t.same(unknownFields(TypeUrl.Cluster, deep), ['circuit_breakers.thresholds.#7777'], 'two messages deep');
  const decoded = protos.decodeAny({ type_url: TypeUrl.Cluster, value: deep }).message;
  t.same(unknownFields(TypeUrl.Cluster, protos.encodeAny(TypeUrl.Cluster, decoded).value), [], 'decoded and encoded again, the field is gone: what decoding alone would hide');
  t.same(unknownFields('type.googleapis.com/not.a.Type', clean), [], 'a type not loaded is not walked');
});
