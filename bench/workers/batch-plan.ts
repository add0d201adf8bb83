/**
 * Child process of the SST-2 epoch benchmark: the first epoch's batches exactly as `train` plans them
 * (the same encoder, batch loader, seed and grouping), as each batch's example lengths in order, for
 * PyTorch to run the same padding. Writes them to a JSON file and prints a one-line summary.
 *   node --import tsx bench/workers/batch-plan.ts <glue-dir> <vocab> <batch-size> <seed> <group-by-length: 0|1> <max-length> <out.json> [limit]
 */
import * as fs from 'node:fs';
import { makeBatches } from '../../src/data/batching.js';
import { exampleLength } from '../../src/data/encoded.js';
import { getGlueTask } from '../../src/data/glue-tasks.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { loadTaskSplit } from '../../src/train/data.js';

const [dir, vocab, batchArg, seedArg, groupArg, maxLengthArg, out, limitArg] = process.argv.slice(2);
const task = getGlueTask('sst2');
const ds = loadTaskSplit(task, task.trainSplit, { dir: dir!, tokenizer: loadTokenizer(vocab!), maxLength: Number(maxLengthArg), cacheDir: false, limit: limitArg ? Number(limitArg) : undefined });
const loader = makeBatches(ds, { batchSize: Number(batchArg), shuffle: true, seed: Number(seedArg), groupByLength: groupArg === '1' });
const lengths: number[][] = [];
for (let i = 0; i < loader.batchesPerEpoch; i++) lengths.push(loader.next().indices.map((e) => exampleLength(ds, e)));
fs.writeFileSync(out!, JSON.stringify({ lengths }));
const slots = lengths.reduce((s, b) => s + b.length * Math.max(...b), 0);
const tokens = lengths.reduce((s, b) => s + b.reduce((a, n) => a + n, 0), 0);
process.stdout.write(JSON.stringify({ batches: lengths.length, examples: ds.size, paddingShare: +(1 - tokens / slots).toFixed(4) }) + '\n');
