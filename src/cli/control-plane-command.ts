// `remora control-plane`: the reference xDS control plane (docs/control-plane.md).
// Serves ADS to sidecars from a directory of Remora config files, one per node group,
// and a small management API (proto/remora/control/v1/control.proto); with --ca-dir, a
// mesh CA on the ADS port (proto/remora/control/v1/ca.proto, docs/mesh-ca.md), which
// signs only for callers that prove their identity (--ca-jwks, --ca-bootstrap-tokens);
// with --tls, ADS and the CA over TLS, xDS served only to callers with an identity.

import { parseArgs } from 'node:util';
import { createLogger } from '../core/log.js';
import { DEFAULT_LISTEN, DEFAULT_MANAGEMENT, startControlPlane } from '../control-plane/server.js';
import { authnOptionsProblem, DEFAULT_JWT_AUDIENCE } from '../control-plane/ca-authn.js';
import type { MeshCaOptions } from '../control-plane/mesh-ca.js';

const HELP = `remora control-plane — a reference xDS (ADS, state of the world) control plane

Usage:
  remora control-plane --config-dir DIR [--listen HOST:PORT] [--management HOST:PORT]
                       [--ca-dir DIR [--trust-domain TD] [--cert-ttl DURATION]
                        [--ca-jwks FILE --ca-jwt-issuer ISSUER [--ca-jwt-audience AUD]]
                        [--ca-bootstrap-tokens FILE]
                        [--insecure-allow-any-identity [--ca-token-file FILE]]
                        [--tls [--server-identity SPIFFE-ID] [--xds-access FILE]]]

  DIR holds Remora config files, one per node group: <group>.yaml, .yml or .json. A node
  is served the group named after its node.cluster, else its node.id, else "default".
  Files are watched; a changed file becomes the group's next version, pushed to its nodes.
  An invalid file is rejected (every error logged) and its group keeps its last snapshot.
  Groups named grpc-* serve gRPC API listeners, for proxyless gRPC clients (xds:///NAME).

Options:
  -d, --config-dir DIR     group configs (required)
  -l, --listen H:P         ADS (xDS) address (default ${DEFAULT_LISTEN})
  -m, --management H:P     management API (ListNodes, PushSnapshot; unauthenticated,
                           keep it on loopback) (default ${DEFAULT_MANAGEMENT})
  --ca-dir DIR             serve the mesh CA on the ADS port: signs sidecars' CSRs for
                           their SPIFFE IDs with DIR/ca.key and DIR/ca.pem, generated
                           (EC P-256, key mode 0600) when both are absent
  --trust-domain TD        the SPIFFE trust domain signed for (default cluster.local)
  --cert-ttl DURATION      validity for requests that ask for none (default 24h), as
                           Ns, Nm, Nh or Nd, 10m .. 15d; a request's own validity is
                           clamped to 10m .. 15d

  Mesh CA authentication: a caller gets a certificate only for the SPIFFE ID its token
  proves, sent as gRPC metadata "authorization: Bearer <token>" (a sidecar's
  xds.mesh_identity.token_file). With neither --ca-jwks nor --ca-bootstrap-tokens the CA
  refuses every request (PERMISSION_DENIED), unless --insecure-allow-any-identity.
  --ca-jwks FILE           verify Kubernetes service-account tokens (projected, RS256,
                           ES256, PS256) with the issuer's keys, a JWKS file from
                           "kubectl get --raw /openid/v1/jwks" (re-read when it
                           changes); a token for namespace NS, service account SA gets
                           spiffe://TD/ns/NS/sa/SA only
  --ca-jwt-issuer ISSUER   the tokens' iss (required with --ca-jwks; "issuer" of
                           kubectl get --raw /.well-known/openid-configuration)
  --ca-jwt-audience AUD    an audience the tokens must carry (default ${DEFAULT_JWT_AUDIENCE})
  --ca-bootstrap-tokens FILE
                           a token per identity, for workloads outside Kubernetes:
                           lines "<spiffe-id> <sha256-hex-of-token>" (# comments;
                           re-read when it changes)
  --insecure-allow-any-identity
                           DEMOS ONLY: sign any identity for any caller (logged at
                           start and with every certificate); not with --ca-jwks or
                           --ca-bootstrap-tokens
  --ca-token-file FILE     with --insecure-allow-any-identity only: callers must send
                           "Bearer <FILE's content>". A shared secret that binds no
                           identity: every holder may ask for every identity

  TLS on the ADS port (sidecars: xds.tls in the bootstrap; docs/control-plane.md):
  --tls                    serve ADS and the CA over TLS with a certificate the mesh CA
                           issues to this control plane (fresh key, 24 h, renewed at
                           half; every replica issues its own with the shared CA key).
                           Client certificates from the CA are verified when presented:
                           a sidecar renews with its current certificate (mTLS) and
                           speaks xDS with it. xDS callers must prove an identity (the
                           certificate, or a token as for the CA) and are served only
                           the groups it may have: spiffe://TD/ns/NS/sa/SA gets group
                           SA or SA.NS, and "default"; others per --xds-access
  --server-identity ID     this control plane's SPIFFE ID, which sidecars verify
                           (default spiffe://TD/ns/remora-system/sa/remora-control-plane)
  --xds-access FILE        lines "<group> <spiffe-id>" (or "<group> *"): a group listed
                           here is served to the identities listed only (# comments;
                           re-read when it changes)
  -h, --help

SIGTERM and SIGINT end every ADS stream (nodes reconnect to another replica) and exit 0.
`;

export async function controlPlaneCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        'config-dir': { type: 'string', short: 'd' },
        listen: { type: 'string', short: 'l' },
        management: { type: 'string', short: 'm' },
        'ca-dir': { type: 'string' },
        'trust-domain': { type: 'string' },
        'cert-ttl': { type: 'string' },
        'ca-token-file': { type: 'string' },
        'ca-jwks': { type: 'string' },
        'ca-jwt-issuer': { type: 'string' },
        'ca-jwt-audience': { type: 'string' },
        'ca-bootstrap-tokens': { type: 'string' },
        'insecure-allow-any-identity': { type: 'boolean' },
        tls: { type: 'boolean' },
        'server-identity': { type: 'string' },
        'xds-access': { type: 'string' },
      },
    }));
  } catch (err) {
    return usage(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const configDir = values['config-dir'];
  if (configDir === undefined || configDir === '') return usage('control-plane needs --config-dir DIR');

  let ca: MeshCaOptions | undefined;
  const caDir = values['ca-dir'];
  if (caDir === undefined || caDir === '') {
    const caFlags = [
      'trust-domain', 'cert-ttl', 'ca-token-file', 'ca-jwks', 'ca-jwt-issuer', 'ca-jwt-audience', 'ca-bootstrap-tokens', 'insecure-allow-any-identity', 'tls',
    ] as const;
    const stray = caFlags.find((f) => values[f] !== undefined);
    if (stray !== undefined) return usage(`--${stray} needs --ca-dir DIR`);
  } else {
    let defaultTtlSeconds: number | undefined;
    if (values['cert-ttl'] !== undefined) {
      const s = durationSeconds(values['cert-ttl']);
      if (s === null) return usage(`--cert-ttl must be a duration such as 90m, 24h or 7d (got "${values['cert-ttl']}")`);
      defaultTtlSeconds = s;
    }
    ca = {
      dir: caDir,
      trustDomain: values['trust-domain'],
      defaultTtlSeconds,
      jwksFile: values['ca-jwks'],
      jwtIssuer: values['ca-jwt-issuer'],
      jwtAudience: values['ca-jwt-audience'],
      bootstrapTokensFile: values['ca-bootstrap-tokens'],
      insecureAllowAnyIdentity: values['insecure-allow-any-identity'],
      tokenFile: values['ca-token-file'],
    };
    const problem = authnOptionsProblem(ca);
    if (problem !== null) return usage(problem);
  }

  if (values.tls !== true) {
    const stray = (['server-identity', 'xds-access'] as const).find((f) => values[f] !== undefined);
    if (stray !== undefined) return usage(`--${stray} needs --tls`);
  }
  const tls = values.tls === true ? { serverIdentity: values['server-identity'], accessFile: values['xds-access'] } : undefined;

  const log = createLogger({ component: 'control-plane' });
  let cp;
  try {
    cp = await startControlPlane({ configDir, listen: values.listen, management: values.management, log, ca, tls });
  } catch (err) {
    process.stderr.write(`remora control-plane: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    log.flush();
    return 1;
  }
  log.info(
    {
      config_dir: configDir,
      listen: cp.listenPort,
      management: cp.managementPort,
      identifier: cp.identifier,
      groups: Object.fromEntries(cp.groups().map((g) => [g.name, g.snapshot?.version ?? null])),
      ...(cp.meshCa !== null ? { mesh_ca: { trust_domain: cp.meshCa.trustDomain, authn: cp.meshCa.authnMethods } } : {}),
      ...(cp.tls !== null ? { tls: { server_identity: cp.tls.serverIdentity } } : {}),
    },
    'control plane ready',
  );

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(s);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
  log.info({ signal }, 'control plane stopping');
  await cp.stop();
  log.flush();
  return 0;
}

/** "90s", "10m", "24h", "15d" → seconds; null when it is not such a duration. */
function durationSeconds(text: string): number | null {
  const m = /^(\d{1,9})(s|m|h|d)$/.exec(text.trim());
  if (m === null) return null;
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

function usage(message: string): number {
  process.stderr.write(`remora control-plane: ${message}\nRun "remora control-plane --help" for usage.\n`);
  return 2;
}
