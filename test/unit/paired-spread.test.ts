// The order-balanced estimate of bench:revisions (bench/lib/harness.ts pairedSpread): per
// pair of rounds, the geometric mean of the two ratios, so a steady advantage for
// whichever revision runs second cancels; an odd last round is left out; no pair, no
// estimate.

import t from 'tap';
import { pairedSpread } from '../../bench/lib/harness.js';

t.test('pairs of rounds in opposite orders cancel an order effect', async (t) => {
  // A true ratio of 0.95, with the second-run revision 20 % cheaper: rounds alternate
  // between 0.95 × 1.2 and 0.95 / 1.2.
  const ratios = [0.95 * 1.2, 0.95 / 1.2, 0.95 * 1.2, 0.95 / 1.2, 0.95 * 1.2, 0.95 / 1.2];
  const paired = pairedSpread(ratios);
  t.same(paired, { median: 0.95, min: 0.95, max: 0.95 }, `expected 0.95 from every pair, saw ${JSON.stringify(paired)}`);
});

t.test('median, min and max over the pairs; an odd last round left out', async (t) => {
  const paired = pairedSpread([1, 1, 0.81, 1, 1.21, 1, 5]);
  t.same(paired, { median: 1, min: 0.9, max: 1.1 }, `expected pairs 1, 0.9, 1.1; saw ${JSON.stringify(paired)}`);
  t.equal(pairedSpread([0.9]), null, 'one round: no pair, no estimate');
});
