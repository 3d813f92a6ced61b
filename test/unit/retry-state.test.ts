// Unit tests for a request's retry state (src/upstream/retry-state.ts): retries left
// (URX), the cluster's retry limit (UO), the retry resource held until released, the
// replay buffer and its limit, and the single keep-alive race resend.

import t from 'tap';
import type { RetryPolicy } from '../../src/config/types.js';
import { ClusterCounter } from '../../src/stats/stat-names.js';
import { CompiledRetryPolicy } from '../../src/upstream/retry-policy.js';
import { REPLAY_LIMIT_BYTES, RetryState, type RetryCluster } from '../../src/upstream/retry-state.js';

function policy(over: Partial<RetryPolicy> = {}): CompiledRetryPolicy {
  return new CompiledRetryPolicy({
    retry_on: ['5xx'],
    num_retries: 2,
    per_try_timeout_ms: 0,
    retriable_status_codes: [],
    base_interval_ms: 25,
    max_interval_ms: 250,
    allow_request_headers: false,
    retry_non_idempotent_on_reset: false,
    buffer_limit_bytes: 1024,
    ...over,
  });
}

function cluster(maxRetries = 3): RetryCluster & { counted: number[]; retriesUsed: () => number } {
  let used = 0;
  const counted: number[] = [];
  return {
    config: { circuit_breakers: { max_connections: 1, max_pending_requests: 1, max_requests: 1, max_retries: maxRetries } },
    resources: {
      requests: { used: 0 },
      pending: { used: 0 },
      retries: {
        tryAcquire(max: number): boolean {
          if (used >= max) return false;
          used++;
          return true;
        },
        release(): void {
          used--;
        },
      },
    },
    stats: { count: (c: number) => counted.push(c) },
    counted,
    retriesUsed: () => used,
  };
}

t.test('retries until num_retries, then marks URX', async (t) => {
  const s = new RetryState(policy({ num_retries: 2 }), false);
  const c = cluster();
  t.ok(s.mayRetry(false, c), 'first retry allowed');
  t.equal(c.retriesUsed(), 1, 'retry resource taken');
  const backoff = s.beginRetry();
  t.ok(backoff >= 0 && backoff < 25, `first backoff in [0, 25): ${backoff}`);
  s.releaseRetry(c);
  t.equal(c.retriesUsed(), 0, 'released');
  s.releaseRetry(c);
  t.equal(c.retriesUsed(), 0, 'release is idempotent');
  t.ok(s.mayRetry(false, c));
  s.beginRetry();
  s.releaseRetry(c);
  t.notOk(s.mayRetry(false, c), 'no third retry');
  t.ok(s.exhausted, 'URX');
  t.notOk(s.overflow);
  t.same(c.counted, [ClusterCounter.RqRetryLimitExceeded]);
  t.equal(s.retries, 2);
});

t.test('the cluster retry limit refuses: UO, no resource held', async (t) => {
  const s = new RetryState(policy(), false);
  const c = cluster(0);
  t.notOk(s.mayRetry(false, c));
  t.ok(s.overflow, 'UO');
  t.notOk(s.exhausted);
  t.same(c.counted, [ClusterCounter.RqRetryOverflow]);
  s.releaseRetry(c);
  t.equal(c.retriesUsed(), 0, 'nothing to release');
});

t.test('no policy: never retries, no flags', async (t) => {
  const s = new RetryState(null, false);
  t.notOk(s.retriesStatus(503));
  t.notOk(s.mayRetry(false, cluster()));
  t.notOk(s.exhausted || s.overflow);
  t.equal(s.perTryTimeoutMs, 0);
});

t.test('num_retries 0: no retry and no URX', async (t) => {
  const s = new RetryState(policy({ num_retries: 0 }), false);
  t.notOk(s.mayRetry(false, cluster()));
  t.notOk(s.exhausted);
});

t.test('replay buffer: kept up to the limit, copied for each resend', async (t) => {
  const s = new RetryState(policy({ buffer_limit_bytes: 10 }), true);
  s.retain(Buffer.from('hello'));
  s.retain(Buffer.from('world'));
  const copy = s.replayBody();
  t.same(copy?.map((b) => b.toString()), ['hello', 'world']);
  t.not(copy, s.replayBody(), 'a new copy each time');
  t.ok(s.mayRetry(true, cluster()), '10 bytes fit buffer_limit_bytes 10');
  const big = new RetryState(policy({ buffer_limit_bytes: 10 }), true);
  big.retain(Buffer.from('hello world!'));
  t.notOk(big.mayRetry(true, cluster()), 'a body over buffer_limit_bytes is not retried');
  const huge = new RetryState(null, true);
  huge.retain(Buffer.alloc(REPLAY_LIMIT_BYTES + 1));
  t.equal(huge.replayBody(), null, 'over the replay limit nothing is kept');
});

t.test('keep-alive race resend: once, idempotent, no policy, whole body', async (t) => {
  const s = new RetryState(null, false);
  t.notOk(s.mayResendAfterKeepAliveRace('POST', false, true), 'POST is not resent');
  t.ok(s.mayResendAfterKeepAliveRace('GET', false, true), 'GET is resent');
  t.notOk(s.mayResendAfterKeepAliveRace('GET', false, true), 'at most once');
  const withPolicy = new RetryState(policy(), false);
  t.notOk(withPolicy.mayResendAfterKeepAliveRace('GET', false, true), 'a policy decides instead');
  const body = new RetryState(null, true);
  body.retain(Buffer.from('x'));
  t.notOk(body.mayResendAfterKeepAliveRace('PUT', true, false), 'body not complete');
  t.ok(body.mayResendAfterKeepAliveRace('PUT', true, true), 'whole body kept');
});
