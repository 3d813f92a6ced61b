// Envoy-style response flags: a short code saying why a response is what it is.
// Kept on every exchange for access logs and metrics; shown in error bodies.

export const ResponseFlag = {
  None: '-',
  NoRoute: 'NR',
  /** The route's cluster is not (yet) known: a route or tcp_proxy from xDS may name a
   *  cluster CDS has not sent or has removed (Envoy's cluster_not_found, 503). */
  NoClusterFound: 'NC',
  NoHealthyUpstream: 'UH',
  UpstreamConnectFailure: 'UF',
  UpstreamOverflow: 'UO',
  UpstreamRetryLimitExceeded: 'URX',
  UpstreamRequestTimeout: 'UT',
  UpstreamConnectionTermination: 'UC',
  UpstreamRemoteReset: 'UR',
  UpstreamProtocolError: 'UPE',
  DownstreamConnectionTermination: 'DC',
  DownstreamProtocolError: 'DPE',
  RateLimited: 'RL',
  LocalReset: 'LR',
  DirectResponse: 'DR',
  /** Refused by an authorization policy (Envoy's RBAC filter sets no flag; its details
   *  say rbac_access_denied). */
  AuthorizationDenied: 'RBAC',
} as const;

export type ResponseFlag = (typeof ResponseFlag)[keyof typeof ResponseFlag];
