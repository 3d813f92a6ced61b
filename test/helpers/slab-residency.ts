// Run as a child process by the stats-slots test: makes 16 stats slabs resident as far
// as a worker start and the main thread's admin views touch them, and prints how much
// the process's RSS grew as JSON ({ grownMiB, totalMiB }). A fresh process started with
// MALLOC_MMAP_THRESHOLD_ set keeps glibc from serving the large zeroed buffers out of
// memory it has used before (which calloc must clear, making it resident whatever the
// code under test does): what grows is then what the code touched.

import { StatsReader } from '../../src/stats/reader.js';
import { StatsRecorder } from '../../src/stats/recorder.js';
import { LAYOUT } from '../../src/stats/shapes.js';
import { workerStatsView } from '../../src/stats/worker-view.js';

const rssMiB = (): number => process.memoryUsage().rss / 2 ** 20;

const slabs = Array.from({ length: 16 }, () => LAYOUT.allocate());
const totalMiB = (slabs.length * LAYOUT.cells * 4) / 2 ** 20;
const before = rssMiB();
// What a worker does when it starts (its slot's slab may come from a dead predecessor)...
for (const slab of slabs) new StatsRecorder(slab).zeroGauges();
// ...and the main thread with a three-cluster config: folds, /workers, /reset_counters.
const reader = new StatsReader(slabs);
reader.setSlots([0], [0, 1, 2]);
reader.fold();
for (let w = 0; w < slabs.length; w++) workerStatsView(reader, w);
reader.reset();
process.stdout.write(`${JSON.stringify({ grownMiB: rssMiB() - before, totalMiB })}\n`);
