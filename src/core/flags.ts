// Envoy-style response flags: a short code saying why a response is what it is.
// Kept on every exchange for access logs and metrics; shown in error bodies.

export const ResponseFlag = {
  None: '-',
  NoRoute: 'NR',
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
} as const;

export type ResponseFlag = (typeof ResponseFlag)[keyof typeof ResponseFlag];
