// Worker thread of bench/histogram-recording.ts: builds one task (histogram-tasks.ts)
// and runs a round of it for every message, replying with the round's measurements.

import { parentPort, workerData } from 'node:worker_threads';
import { makeTask, type TaskParams } from './histogram-tasks.js';

export interface WorkerInput {
  readonly task: string;
  readonly values: SharedArrayBuffer;
  readonly records: number;
  readonly workers: number;
  readonly clusters: number;
  readonly perInterval: number;
}

export type WorkerRequest = 'info' | 'round';

const input = workerData as WorkerInput;
const params: TaskParams = { ...input, values: new Uint32Array(input.values) };
const task = makeTask(input.task, params);

parentPort!.on('message', (msg: WorkerRequest) => {
  parentPort!.postMessage(msg === 'info' ? task.info() : task.round());
});
