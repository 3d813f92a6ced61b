// Minimal types for the part of autocannon the benchmarks use (it ships none).
declare module 'autocannon' {
  export interface RequestSpec {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
  }
  interface Options {
    url: string;
    connections?: number;
    pipelining?: number;
    duration?: number;
    method?: string;
    body?: string | Buffer;
    headers?: Record<string, string>;
    /** Requests to make before stopping (overrides duration). */
    amount?: number;
    /** Requests per second over all connections (open loop, coordinated omission corrected). */
    overallRate?: number;
    /** Seconds before a request counts as timed out (default 10). */
    timeout?: number;
    /** Each connection cycles through these in order. */
    requests?: RequestSpec[];
    /** Worker threads to run the connections on (connections are split between them). */
    workers?: number;
  }
  interface Stats {
    average: number;
    mean: number;
    p50: number;
    p99: number;
    total: number;
  }
  interface Result {
    requests: Stats;
    latency: Stats;
    throughput: Stats;
    errors: number;
    timeouts: number;
    non2xx: number;
    '2xx': number;
    /** Seconds. */
    duration: number;
  }
  function autocannon(opts: Options): Promise<Result>;
  export default autocannon;
}
