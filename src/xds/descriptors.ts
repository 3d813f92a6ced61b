// The message descriptors of the loaded xDS protos (src/xds/protos.ts), for code that
// walks a message by its schema rather than decoding it: finding unknown fields
// (unknown-fields.ts) and reading resources written as JSON (the corpus benchmark's
// bench/lib/proto-json.ts). Names are resolved as protoc resolves them.

import { loadXdsProtos } from './protos.js';

/** A field as the loader's descriptor writes it (`typeName` relative to its message). */
export interface FieldDescriptor {
  readonly name: string;
  readonly number: number;
  readonly label: string;
  readonly type: string;
  readonly typeName: string;
  readonly jsonName: string;
}

export interface MessageDescriptor {
  readonly field?: readonly FieldDescriptor[];
  readonly nestedType?: readonly (MessageDescriptor & { readonly name: string; readonly options: { readonly mapEntry?: boolean } | null })[];
}

/** The descriptor of a message type by full name: a top-level type of the loaded
 *  definition, or one nested in it (`envoy.config.cluster.v3.CircuitBreakers.Thresholds`). */
export function messageDescriptor(fullName: string): MessageDescriptor | null {
  const definition = loadXdsProtos().definition;
  const parts = fullName.split('.');
  for (let i = parts.length; i > 0; i--) {
    let d = (definition[parts.slice(0, i).join('.')] as { type?: MessageDescriptor } | undefined)?.type;
    for (const nested of parts.slice(i)) d = d?.nestedType?.find((n) => n.name === nested);
    if (d !== undefined) return d;
  }
  return null;
}

/** A type name as written in a field of `scope` (relative, protobuf's scoping rules: the
 *  innermost enclosing scope first) → its full name, or null when not loaded. */
export function resolveTypeName(scope: string, name: string): string | null {
  if (name.startsWith('.')) return name.slice(1);
  const parts = scope.split('.');
  for (let i = parts.length; i >= 0; i--) {
    const candidate = [...parts.slice(0, i), name].join('.');
    if (messageDescriptor(candidate) !== null) return candidate;
  }
  return null;
}
