// The generator-bound rule of the benchmark suite (bench/suite.ts), kept pure so that it is
// unit-tested on its own (test/unit/bench-verdict.test.ts).
//
// A closed-loop generator (autocannon, conn-loop, wrk) measures a target only while it can
// drive faster than the target answers. The suite's evidence of that is the direct-to-
// upstream baseline measured with the same generator in the same rounds: when direct ran
// under GENERATOR_HEADROOM_MIN × the target's rate, the generator (or the core it shares)
// may be what set the pace, so the figure is **generator-bound** and no target verdict
// uses it. A figure without a direct baseline cannot show that headroom either and is not
// judged. Exactly 1.5× is enough headroom (the rule is "direct < 1.5 × target").

import { round } from './harness.js';

/** The least direct ÷ target req/s for a figure to count toward a verdict. */
export const GENERATOR_HEADROOM_MIN = 1.5;

export type HeadroomState = 'judged' | 'generator-bound' | 'no-baseline';

export interface Headroom {
  readonly state: HeadroomState;
  /** direct req/s ÷ target req/s, 2 decimals; null without a baseline or when the target
   *  served nothing. */
  readonly ratio: number | null;
}

/** Whether a closed-loop figure of `targetRps` can be judged against a direct baseline of
 *  `directRps` measured in the same rounds (null or absent: no baseline). */
export function generatorHeadroom(directRps: number | null | undefined, targetRps: number): Headroom {
  if (directRps === null || directRps === undefined || !Number.isFinite(directRps) || directRps <= 0) return { state: 'no-baseline', ratio: null };
  const ratio = targetRps > 0 ? round(directRps / targetRps, 2) : null;
  return { state: directRps < GENERATOR_HEADROOM_MIN * targetRps ? 'generator-bound' : 'judged', ratio };
}

/** The state of a check that compares several figures: generator-bound if any is, else no
 *  baseline if any lacks one (null counts as no baseline), else judged. */
export function worstHeadroom(figures: readonly (Headroom | null)[]): HeadroomState {
  const states = figures.map((h) => h?.state ?? 'no-baseline');
  if (states.includes('generator-bound')) return 'generator-bound';
  if (states.includes('no-baseline')) return 'no-baseline';
  return 'judged';
}

export const NOT_JUDGED_BOUND = 'not judged: generator-bound';
export const NOT_JUDGED_NO_BASELINE = 'not judged: no direct baseline';

export type Verdict = 'met' | 'missed' | 'not measured' | typeof NOT_JUDGED_BOUND | typeof NOT_JUDGED_NO_BASELINE;

/** One comparison toward a target (one connection count, one variant, …). */
export interface Check {
  readonly ok: boolean;
  readonly text: string;
  /** Open-loop and memory figures have no generator rule: 'judged'. */
  readonly headroom: HeadroomState;
}

const MARK: Record<HeadroomState, string> = {
  judged: '',
  'generator-bound': ' [generator-bound, not judged]',
  'no-baseline': ' [no direct baseline, not judged]',
};

/**
 * A target's verdict from its checks. Only judged checks decide: met when every one of
 * them is ok, missed otherwise. When none is judged, the verdict says why (generator-bound
 * wins over a missing baseline); with no checks at all, not measured. The detail lists
 * every check, the unjudged ones marked.
 */
export function verdictOf(checks: readonly Check[]): { verdict: Verdict; detail: string } {
  if (checks.length === 0) return { verdict: 'not measured', detail: '' };
  const detail = checks.map((c) => `${c.text}${MARK[c.headroom]}`).join('; ');
  const judged = checks.filter((c) => c.headroom === 'judged');
  if (judged.length > 0) return { verdict: judged.every((c) => c.ok) ? 'met' : 'missed', detail };
  return { verdict: checks.some((c) => c.headroom === 'generator-bound') ? NOT_JUDGED_BOUND : NOT_JUDGED_NO_BASELINE, detail };
}

/** The report's generator-bound cell: null is the direct baseline itself. */
export function headroomCell(h: Headroom | null): string {
  if (h === null) return 'baseline';
  switch (h.state) {
    case 'judged':
      return 'no';
    case 'generator-bound':
      return '**generator-bound**';
    case 'no-baseline':
      return 'no baseline';
  }
}
