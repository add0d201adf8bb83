/**
 * The CLI with the train and eval commands registered, whether or not the command index lists them
 * yet: `node --import tsx test/train/cli-entry.ts train ...`.
 */
import { commands } from '../../src/cli/commands/index.js';
import { register as registerEval } from '../../src/cli/commands/eval.js';
import { register as registerTrain } from '../../src/cli/commands/train.js';
import { main } from '../../src/cli/main.js';

for (const r of [registerTrain, registerEval]) if (!commands.includes(r)) commands.push(r);
await main(process.argv);
