import { ModtuneError } from '../errors.js';
import { getGlueSplit, getGlueTask, type GlueTask } from './glue-tasks.js';

/**
 * The GLUE submission file for a test split: its file name (`CoLA.tsv`, `MNLI-m.tsv`...) and its
 * text, `index<TAB>prediction` lines with class names (or STS-B scores to 3 decimals, clipped to
 * the 0–5 scale) in the order given.
 */
export function formatSubmission(
  taskName: string | GlueTask,
  split: string,
  ids: ReadonlyArray<string>,
  predictions: ArrayLike<number>,
): { fileName: string; text: string } {
  const task = getGlueTask(taskName);
  const { name } = getGlueSplit(task, split);
  const fileName = task.submission.files[name];
  if (!fileName) throw new ModtuneError(`${task.name} ${name} is not a test split; GLUE takes submissions for ${task.testSplits.join(', ')}`);
  if (ids.length !== predictions.length) throw new ModtuneError(`${task.name} submission: ${predictions.length} predictions for ${ids.length} ids`);
  const lines = ['index\tprediction'];
  for (let i = 0; i < ids.length; i++) {
    const p = predictions[i]!;
    let value: string;
    if (task.submission.format === 'score') {
      if (!Number.isFinite(p)) throw new ModtuneError(`${task.name} submission: prediction ${i} (id ${ids[i]}) is ${p}, expected a number`);
      value = Math.min(5, Math.max(0, p)).toFixed(3);
    } else {
      const label = task.labels![p];
      if (!Number.isInteger(p) || label === undefined) throw new ModtuneError(`${task.name} submission: prediction ${i} (id ${ids[i]}) is ${p}, expected a class index below ${task.labels!.length}`);
      value = label;
    }
    lines.push(`${ids[i]}\t${value}`);
  }
  return { fileName, text: `${lines.join('\n')}\n` };
}
