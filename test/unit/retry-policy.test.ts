// Unit tests for the compiled retry policy (src/upstream/retry-policy.ts): which response
// statuses are retried under each retry_on condition, which pre-header failures are
// retried for which methods, request-header overrides (x-remora-retry-on /
// x-remora-max-retries), and the fully jittered exponential backoff.

import t from 'tap';
import type { RetryOn, RetryPolicy } from '../../src/config/types.js';
import { AttemptFailure, CompiledRetryPolicy, headerMs, isIdempotent, MAX_REQUEST_RETRIES, RetryBit } from '../../src/upstream/retry-policy.js';

function policy(over: Partial<RetryPolicy> = {}): RetryPolicy {
  return {
    retry_on: [],
    num_retries: 1,
    per_try_timeout_ms: 0,
    retriable_status_codes: [],
    base_interval_ms: 25,
    max_interval_ms: 250,
    allow_request_headers: false,
    retry_non_idempotent_on_reset: false,
    buffer_limit_bytes: 65536,
    ...over,
  };
}

const compiled = (retryOn: readonly RetryOn[], over: Partial<RetryPolicy> = {}): CompiledRetryPolicy =>
  new CompiledRetryPolicy(policy({ retry_on: retryOn, ...over }));

/** Statuses in [from, to] that `p` retries. */
function retried(p: CompiledRetryPolicy, from = 100, to = 599): number[] {
  const out: number[] = [];
  for (let s = from; s <= to; s++) if (p.retriesStatus(s)) out.push(s);
  return out;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const IDEMPOTENT = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'];
const NON_IDEMPOTENT = ['POST', 'PATCH', 'CONNECT'];
const FAILURE_NAMES: Record<AttemptFailure, string> = {
  [AttemptFailure.ConnectFailure]: 'connect failure',
  [AttemptFailure.Reset]: 'reset',
  [AttemptFailure.PerTryTimeout]: 'per-try timeout',
  [AttemptFailure.RefusedStream]: 'refused stream',
};

t.test('the constructor copies the route policy', async (t) => {
  const p = compiled(['5xx', 'reset'], {
    num_retries: 3,
    per_try_timeout_ms: 750,
    retriable_status_codes: [418, 429],
    base_interval_ms: 10,
    max_interval_ms: 90,
    allow_request_headers: true,
    retry_non_idempotent_on_reset: true,
    buffer_limit_bytes: 1024,
  });
  t.equal(p.bits, RetryBit.Status5xx | RetryBit.Reset, `bits = 5xx | reset = ${RetryBit.Status5xx | RetryBit.Reset}: got ${p.bits}`);
  t.equal(p.numRetries, 3, `numRetries: expected 3, got ${p.numRetries}`);
  t.equal(p.perTryTimeoutMs, 750, `perTryTimeoutMs: expected 750, got ${p.perTryTimeoutMs}`);
  t.same([...p.statusCodes].sort(), [418, 429], `statusCodes: expected 418,429, got ${[...p.statusCodes].join(',')}`);
  t.equal(p.baseMs, 10, `baseMs: expected 10, got ${p.baseMs}`);
  t.equal(p.maxMs, 90, `maxMs: expected 90, got ${p.maxMs}`);
  t.equal(p.allowRequestHeaders, true, `allowRequestHeaders: expected true, got ${p.allowRequestHeaders}`);
  t.equal(p.retryNonIdempotentOnReset, true, `retryNonIdempotentOnReset: expected true, got ${p.retryNonIdempotentOnReset}`);
  t.equal(p.bufferLimitBytes, 1024, `bufferLimitBytes: expected 1024, got ${p.bufferLimitBytes}`);
  const all = compiled(['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-4xx', 'retriable-status-codes']);
  t.equal(all.bits, 63, `every condition sets its own bit, 1|2|4|8|16|32 = 63: got ${all.bits}`);
  t.equal(compiled([]).bits, 0, `no retry_on gives bits 0: got ${compiled([]).bits}`);
});

t.test('retriesStatus', async (t) => {
  t.test('no condition retries nothing', async (t) => {
    const got = retried(compiled([], { retriable_status_codes: [409, 503] }));
    t.same(got, [], `empty retry_on retries no status (status codes listed but the condition off): got ${got.join(',')}`);
  });

  t.test('5xx retries every status from 500 up, nothing below', async (t) => {
    const got = retried(compiled(['5xx']));
    t.same(got, range(500, 599), `500..599 and nothing else: got ${got.length} statuses, first ${got[0]}, last ${got[got.length - 1]}`);
    t.notOk(compiled(['5xx']).retriesStatus(409), '5xx does not retry 409');
  });

  t.test('gateway-error retries 502, 503 and 504 only', async (t) => {
    const got = retried(compiled(['gateway-error']));
    t.same(got, [502, 503, 504], `only 502,503,504: got ${got.join(',')}`);
  });

  t.test('retriable-4xx retries 409 only', async (t) => {
    const got = retried(compiled(['retriable-4xx']));
    t.same(got, [409], `only 409 Conflict: got ${got.join(',')}`);
  });

  t.test('retriable-status-codes retries exactly the listed codes', async (t) => {
    const got = retried(compiled(['retriable-status-codes'], { retriable_status_codes: [418, 429, 503] }));
    t.same(got, [418, 429, 503], `only 418,429,503: got ${got.join(',')}`);
    const none = retried(compiled(['retriable-status-codes']));
    t.same(none, [], `an empty code list retries nothing: got ${none.join(',')}`);
  });

  t.test('conditions combine', async (t) => {
    const got = retried(compiled(['gateway-error', 'retriable-4xx', 'retriable-status-codes'], { retriable_status_codes: [429] }));
    t.same(got, [409, 429, 502, 503, 504], `409 + 429 + 502..504: got ${got.join(',')}`);
    const wide = retried(compiled(['5xx', 'gateway-error']));
    t.same(wide, range(500, 599), `5xx already covers gateway errors: got ${wide.length} statuses`);
  });

  t.test('reset and connect-failure retry no status', async (t) => {
    const got = retried(compiled(['reset', 'connect-failure']));
    t.same(got, [], `reset/connect-failure are about failures before headers, not statuses: got ${got.join(',')}`);
  });
});

t.test('retriesFailure', async (t) => {
  const methods = [...IDEMPOTENT, ...NON_IDEMPOTENT];

  t.test('a connect failure is retried for every method under connect-failure, reset, 5xx or gateway-error', async (t) => {
    for (const on of ['connect-failure', 'reset', '5xx', 'gateway-error'] as const) {
      const p = compiled([on]);
      const refused = methods.filter((m) => !p.retriesFailure(AttemptFailure.ConnectFailure, m));
      t.same(refused, [], `retry_on ${on}: every method retried after a connect failure; refused: ${refused.join(',')}`);
    }
    for (const on of ['retriable-4xx', 'retriable-status-codes'] as const) {
      const p = compiled([on], { retriable_status_codes: [503] });
      const allowed = methods.filter((m) => p.retriesFailure(AttemptFailure.ConnectFailure, m));
      t.same(allowed, [], `retry_on ${on}: a connect failure is not retried; retried for: ${allowed.join(',')}`);
    }
    const none = methods.filter((m) => compiled([]).retriesFailure(AttemptFailure.ConnectFailure, m));
    t.same(none, [], `empty retry_on: nothing retried; retried for: ${none.join(',')}`);
  });

  for (const failure of [AttemptFailure.Reset, AttemptFailure.PerTryTimeout]) {
    const name = FAILURE_NAMES[failure];
    t.test(`a ${name} is retried for idempotent methods only`, async (t) => {
      for (const on of ['reset', '5xx', 'gateway-error'] as const) {
        const p = compiled([on]);
        const idem = IDEMPOTENT.filter((m) => !p.retriesFailure(failure, m));
        t.same(idem, [], `retry_on ${on}: every idempotent method retried after a ${name}; refused: ${idem.join(',')}`);
        const non = NON_IDEMPOTENT.filter((m) => p.retriesFailure(failure, m));
        t.same(non, [], `retry_on ${on}: no non-idempotent method retried after a ${name}; retried: ${non.join(',')}`);
      }
      for (const on of ['connect-failure', 'retriable-4xx', 'retriable-status-codes'] as const) {
        const p = compiled([on], { retriable_status_codes: [503], retry_non_idempotent_on_reset: true });
        const allowed = methods.filter((m) => p.retriesFailure(failure, m));
        t.same(allowed, [], `retry_on ${on}: a ${name} is not retried (even with retry_non_idempotent_on_reset); retried for: ${allowed.join(',')}`);
      }
    });

    t.test(`retry_non_idempotent_on_reset retries a ${name} for every method`, async (t) => {
      for (const on of ['reset', '5xx', 'gateway-error'] as const) {
        const p = compiled([on], { retry_non_idempotent_on_reset: true });
        const refused = methods.filter((m) => !p.retriesFailure(failure, m));
        t.same(refused, [], `retry_on ${on} + retry_non_idempotent_on_reset: every method retried; refused: ${refused.join(',')}`);
      }
    });
  }
});

t.test('withOverrides', async (t) => {
  t.test('null values keep the route policy', async (t) => {
    const base = compiled(['gateway-error'], { num_retries: 2, retriable_status_codes: [429] });
    const same = base.withOverrides(null, null);
    t.not(same, base, 'a new policy object is returned');
    t.equal(same.bits, base.bits, `bits unchanged: expected ${base.bits}, got ${same.bits}`);
    t.equal(same.numRetries, 2, `numRetries unchanged: expected 2, got ${same.numRetries}`);
    t.equal(same.baseMs, base.baseMs, `baseMs carried over: expected ${base.baseMs}, got ${same.baseMs}`);
    t.equal(same.maxMs, base.maxMs, `maxMs carried over: expected ${base.maxMs}, got ${same.maxMs}`);
    t.same([...same.statusCodes], [429], `statusCodes carried over: got ${[...same.statusCodes].join(',')}`);
  });

  t.test('retry-on adds conditions from a comma list, ignoring unknown names', async (t) => {
    const base = compiled(['gateway-error'], { retriable_status_codes: [429] });
    const p = base.withOverrides(' 5xx, bogus ,retriable-4xx,,RESET, connect-failure', null);
    const want = RetryBit.GatewayError | RetryBit.Status5xx | RetryBit.Retriable4xx | RetryBit.ConnectFailure;
    t.equal(p.bits, want, `gateway-error kept, 5xx/retriable-4xx/connect-failure added, bogus/RESET/empty ignored: expected ${want}, got ${p.bits}`);
    t.equal(base.bits, RetryBit.GatewayError, `the route policy itself is not changed: expected ${RetryBit.GatewayError}, got ${base.bits}`);
    t.ok(p.retriesStatus(500), 'the added 5xx condition retries 500');
    t.notOk(base.retriesStatus(500), 'the route policy still does not retry 500');
    t.notOk(p.retriesStatus(429), 'retriable-status-codes was not added, so 429 is not retried');
    const withCodes = base.withOverrides('retriable-status-codes', null);
    t.ok(withCodes.retriesStatus(429), "an added retriable-status-codes uses the route's code list (429)");
    const garbage = base.withOverrides('nonsense,, ,5XX,constructor,__proto__,toString', null);
    t.equal(garbage.bits, base.bits, `only unknown names: bits unchanged, expected ${base.bits}, got ${garbage.bits}`);
  });

  t.test('max-retries replaces num_retries, capped at MAX_REQUEST_RETRIES', async (t) => {
    const base = compiled(['5xx'], { num_retries: 2 });
    const cases: [string, number][] = [
      ['0', 0],
      ['5', 5],
      [' 7 ', 7],
      [String(MAX_REQUEST_RETRIES), MAX_REQUEST_RETRIES],
      [String(MAX_REQUEST_RETRIES + 1), MAX_REQUEST_RETRIES],
      ['1000000', MAX_REQUEST_RETRIES],
    ];
    for (const [header, want] of cases) {
      const got = base.withOverrides(null, header).numRetries;
      t.equal(got, want, `x-remora-max-retries "${header}": expected ${want}, got ${got}`);
    }
    t.equal(base.numRetries, 2, `the route policy keeps num_retries 2: got ${base.numRetries}`);
    const both = base.withOverrides('retriable-4xx', '4');
    t.equal(both.numRetries, 4, `both overrides at once: numRetries expected 4, got ${both.numRetries}`);
    t.equal(both.bits, RetryBit.Status5xx | RetryBit.Retriable4xx, `both overrides at once: bits expected 17, got ${both.bits}`);
  });

  t.test('garbage max-retries is ignored', async (t) => {
    const base = compiled(['5xx'], { num_retries: 2 });
    for (const header of ['-1', '2.5', 'abc', 'three', 'NaN', 'Infinity', '3 retries']) {
      const got = base.withOverrides(null, header).numRetries;
      t.equal(got, 2, `x-remora-max-retries "${header}": route's 2 kept, got ${got}`);
    }
  });

  // An empty header must not turn retries off, and only plain decimal digits count
  // (Number() alone would read '' as 0 and accept '0x3', '1e1', '0b11').
  t.test('an empty or non-decimal max-retries is ignored', async (t) => {
    const base = compiled(['5xx'], { num_retries: 2 });
    for (const header of ['', '   ', '0x3', '1e1', '0b11']) {
      const got = base.withOverrides(null, header).numRetries;
      t.equal(got, 2, `x-remora-max-retries "${header}": route's 2 kept, got ${got}`);
    }
  });
});

t.test("backoffMs is Envoy's fully jittered backoff: uniform in [0, (2^n − 1) × base), capped at max", async (t) => {
  const p = compiled(['5xx'], { base_interval_ms: 25, max_interval_ms: 250 });
  const samples = 20_000;
  // [retry, range (2^n − 1) × 25]: below the cap the wait is uniform over the range;
  // above it, draws past 250 are capped, so a share 1 − 250/range sits exactly at 250.
  for (const [retry, range] of [
    [1, 25],
    [2, 75],
    [3, 175],
    [4, 375],
    [5, 775],
    [40, (2 ** 30 - 1) * 25],
  ]) {
    const ceiling = Math.min(range, 250);
    let lo = Infinity;
    let hi = -Infinity;
    let sum = 0;
    let bad = 0;
    let capped = 0;
    for (let i = 0; i < samples; i++) {
      const ms = p.backoffMs(retry);
      if (!(Number.isFinite(ms) && ms >= 0 && ms <= ceiling)) bad++;
      if (ms === 250) capped++;
      lo = Math.min(lo, ms);
      hi = Math.max(hi, ms);
      sum += ms;
    }
    const mean = sum / samples;
    t.equal(bad, 0, `retry ${retry}: every sample in [0, ${ceiling}]: ${bad} outside (min ${lo}, max ${hi})`);
    const capShare = range > 250 ? 1 - 250 / range : 0;
    // Uniform part's mean is ceiling/2; the capped share sits at 250.
    const expectedMean = (1 - capShare) * (ceiling / 2) + capShare * 250;
    t.ok(Math.abs(mean - expectedMean) < ceiling * 0.05, `retry ${retry}: mean about ${expectedMean.toFixed(1)}: got ${mean.toFixed(2)}`);
    t.ok(Math.abs(capped / samples - capShare) < 0.03, `retry ${retry}: share at the 250 ms cap about ${capShare.toFixed(3)}: got ${(capped / samples).toFixed(3)}`);
    if (range < 1000) t.ok(lo < ceiling * 0.05, `retry ${retry}: samples start near 0: min ${lo.toFixed(2)}`);
  }
  const small = compiled(['5xx'], { base_interval_ms: 100, max_interval_ms: 40 });
  let over = 0;
  for (let i = 0; i < 5000; i++) if (small.backoffMs(1) > 40) over++;
  t.equal(over, 0, `max below base caps even the first retry at max 40: ${over} samples above`);
  const zero = compiled(['5xx'], { base_interval_ms: 0, max_interval_ms: 0 });
  t.equal(zero.backoffMs(3), 0, `base 0 means no wait: expected 0, got ${zero.backoffMs(3)}`);
});

t.test('per-try timeout override and header milliseconds (x-envoy-upstream-rq-per-try-timeout-ms)', async (t) => {
  const base = compiled(['5xx'], { per_try_timeout_ms: 300 });
  t.equal(base.withOverrides(null, null, '1200').perTryTimeoutMs, 1200, 'digits replace per_try_timeout_ms');
  for (const bad of ['', ' ', '-1', '1.5', '12ms', '9999999999']) {
    t.equal(base.withOverrides(null, null, bad).perTryTimeoutMs, 300, `"${bad}" is ignored: the route's 300 ms kept`);
  }
  t.equal(base.withOverrides('reset', null).perTryTimeoutMs, 300, 'other overrides keep per_try_timeout_ms');
  t.equal(headerMs(' 250 '), 250, 'surrounding spaces are fine');
  t.equal(headerMs('0'), 0, '0 (no timeout) is a value');
  t.equal(headerMs(null), null, 'no header, no value');
});

t.test('isIdempotent: RFC 9110 methods only', async (t) => {
  for (const m of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']) t.ok(isIdempotent(m), `${m} is idempotent`);
  for (const m of ['POST', 'PATCH', 'CONNECT', 'get']) t.notOk(isIdempotent(m), `${m} is not`);
});
