// Remora's own protos (proto/remora/...), loaded at runtime with @grpc/proto-loader: where
// the proto/ directory is, one set of decoding options, and the mesh CA's service, which
// both the control plane (src/control-plane/mesh-ca.ts) and the sidecar's identity client
// (src/control/mesh-identity.ts) use. The management API's proto is loaded by
// src/control-plane/management.ts with the same root and options.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** Field names as in the .proto, 64-bit integers as strings, defaults filled in. */
export const REMORA_LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

const CA_PROTO_FILE = 'remora/control/v1/ca.proto';

/** The proto/ directory: found by walking up from this module (src/control/ in tests,
 *  dist/src/control/ when built) until a directory holds `proto/<marker>`. */
export function protoRoot(marker: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  let dir = here;
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, marker))) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`cannot find proto/${marker} above ${here} (the image must ship proto/)`);
}

/** Loads one of Remora's proto files and returns the service `name` of package
 *  remora.control.v1 in it. */
export function loadRemoraService(file: string, name: string): { definition: protoLoader.PackageDefinition; service: grpc.ServiceClientConstructor } {
  const definition = protoLoader.loadSync(file, { ...REMORA_LOADER_OPTIONS, includeDirs: [protoRoot(file)] });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { remora: { control: { v1: Record<string, grpc.ServiceClientConstructor> } } };
  const service = pkg.remora.control.v1[name];
  if (service === undefined) throw new Error(`${file} defines no service remora.control.v1.${name}`);
  return { definition, service };
}

let meshCa: grpc.ServiceClientConstructor | null = null;

/** remora.control.v1.MeshCertificateService (proto/remora/control/v1/ca.proto). */
export function loadMeshCaService(): grpc.ServiceClientConstructor {
  meshCa ??= loadRemoraService(CA_PROTO_FILE, 'MeshCertificateService').service;
  return meshCa;
}

/** CreateCertificateRequest as proto-loader decodes it (validity_seconds: int64 as a string). */
export interface CreateCertificateRequest {
  readonly csr_pem: string;
  readonly validity_seconds: string | number;
}

export interface CreateCertificateResponse {
  readonly cert_chain_pem: string[];
  readonly ca_bundle_pem: string;
}
