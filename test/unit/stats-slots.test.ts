// Unit tests for what the stats cost per cluster slot (reader.ts, recorder.ts,
// worker-view.ts): the slabs are sized for MAX_CLUSTERS, but folds, resets and the
// per-worker view go no further than the slots a config has used, a replacement
// worker's gauge reset leaves the pages of unused slots untouched (not resident), and a
// slot's counts survive its removal from the config for /workers.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MAX_CLUSTERS, MAX_LISTENERS } from '../../src/shared/limits.js';
import { StatsReader } from '../../src/stats/reader.js';
import { SlabClusterStats, StatsRecorder } from '../../src/stats/recorder.js';
import { CLUSTER_SHAPE, LAYOUT, gaugeOffset } from '../../src/stats/shapes.js';
import { ClusterCounter, ClusterGauge } from '../../src/stats/stat-names.js';
import { workerStatsView } from '../../src/stats/worker-view.js';

t.test('the slots in use bound what the reader reads, by the highest slot ever used', async (t) => {
  const reader = new StatsReader([LAYOUT.allocate()]);
  t.equal(reader.clusterSlotsUsed, MAX_CLUSTERS, 'before any config every cluster slot counts');
  t.equal(reader.listenerSlotsUsed, MAX_LISTENERS, 'before any config every listener slot counts');
  reader.setSlots([0], [0, 1, 2]);
  t.equal(reader.clusterSlotsUsed, 3, 'three clusters: slots 0..2');
  reader.setSlots([0], [0]);
  t.equal(reader.clusterSlotsUsed, 3, 'a slot no longer in the config still counts (it may hold counts)');
  reader.setSlots([1], [0, 7]);
  t.equal(reader.clusterSlotsUsed, 8, 'a higher slot raises the bound');
  t.equal(reader.listenerSlotsUsed, 2, 'listener slots likewise');
});

t.test('fold sums 32-bit deltas across a wrap; reset zeroes the totals of used slots', async (t) => {
  const slab = LAYOUT.allocate();
  const cells = new Uint32Array(slab);
  const reader = new StatsReader([slab]);
  reader.setSlots([], [5]);
  const cell = LAYOUT.clusterBase(5) + ClusterCounter.CxTotal;
  Atomics.store(cells, cell, 0xffff_fff0);
  reader.fold();
  Atomics.store(cells, cell, 0x10); // wrapped: 0x20 more
  reader.fold();
  t.equal(reader.clusterCounter(5, ClusterCounter.CxTotal), 0xffff_fff0 + 0x20, 'the total goes on past 2^32');
  reader.reset();
  t.equal(reader.clusterCounter(5, ClusterCounter.CxTotal), 0, 'reset zeroes it');
  Atomics.add(cells, cell, 3);
  reader.fold();
  t.equal(reader.clusterCounter(5, ClusterCounter.CxTotal), 3, 'counts after the reset add up from 0');
});

t.test('a replacement worker zeroes every gauge and keeps its counters', async (t) => {
  const slab = LAYOUT.allocate();
  const first = new StatsRecorder(slab);
  for (const slot of [0, MAX_CLUSTERS - 1]) {
    const stats = new SlabClusterStats(first, slot);
    stats.connectionOpened();
    stats.gauge(ClusterGauge.RqPending, 2);
  }
  new StatsRecorder(slab).zeroGauges();
  const cells = new Uint32Array(slab);
  for (const slot of [0, MAX_CLUSTERS - 1]) {
    const gauges = LAYOUT.clusterBase(slot) + gaugeOffset(CLUSTER_SHAPE, 0);
    t.same([...cells.subarray(gauges, gauges + CLUSTER_SHAPE.gauges)], new Array(CLUSTER_SHAPE.gauges).fill(0), `slot ${slot}: gauges are 0`);
    t.equal(cells[LAYOUT.clusterBase(slot) + ClusterCounter.CxTotal], 1, `slot ${slot}: the connection counter is kept`);
  }
});

t.test('/workers counts a cluster slot that is no longer in the config', async (t) => {
  const slab = LAYOUT.allocate();
  const rec = new StatsRecorder(slab);
  new SlabClusterStats(rec, 3).count(ClusterCounter.KeepAliveRetries);
  new SlabClusterStats(rec, 0).count(ClusterCounter.KeepAliveRetries);
  const reader = new StatsReader([slab]);
  reader.setSlots([0], [0, 1, 2, 3]);
  reader.setSlots([0], [0]); // cluster 3 removed
  t.equal(workerStatsView(reader, 0).keepAliveRaceRetries, 2, 'both resends are counted');
});

t.test('starting workers and the admin views leave the pages of unused slots untouched', async (t) => {
  // Measured in a fresh process whose large allocations are always fresh mappings (see
  // the helper): in this one, earlier tests' freed buffers let glibc hand out reused
  // memory that calloc clears, which is resident whatever the code under test touches.
  const helper = fileURLToPath(new URL('../helpers/slab-residency.js', import.meta.url));
  const run = spawnSync(process.execPath, [helper], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' } });
  t.equal(run.status, 0, `the measuring process exits 0 (saw ${run.status}; stderr: ${run.stderr.slice(0, 500)})`);
  const { grownMiB, totalMiB } = JSON.parse(run.stdout) as { grownMiB: number; totalMiB: number };
  // Touching every slot would make the slabs resident (plus the reader's totals): the
  // bound is a quarter of the slabs alone, well above the noise of the heap.
  t.ok(grownMiB < totalMiB / 4, `RSS grew ${grownMiB.toFixed(1)} MiB over 16 slabs of ${totalMiB.toFixed(0)} MiB in all (expected under ${(totalMiB / 4).toFixed(0)} MiB)`);
});
