import type { Command } from 'commander';
import { register as artifacts } from './artifacts.js';
import { register as build } from './build.js';
import { register as data } from './data.js';
import { register as demo } from './demo.js';
import { register as exportDelta } from './export.js';
import { register as merge } from './merge.js';
import { register as serveModel } from './serve-model.js';
import { register as predict } from './predict.js';
import { register as inspect } from './inspect.js';
import { register as pull } from './pull.js';
import { register as train } from './train.js';
import { register as evaluate } from './eval.js';
import { register as web } from './web.js';
import { register as sweep } from './sweep.js';
import { register as worker } from './worker.js';
import { register as plot } from './plot.js';
import { register as pretrain } from './pretrain.js';
import { register as fillMask } from './fill-mask.js';

/** Every CLI command registers itself here, one file per command. */
export const commands: Array<(program: Command) => void> = [demo, build, pull, inspect, artifacts, train, evaluate, exportDelta, merge, serveModel, predict, data, sweep, worker, plot, pretrain, fillMask, web];
