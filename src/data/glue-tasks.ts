import { ModtuneError } from '../errors.js';

/** The metrics GLUE reports; `src/metrics/` computes each. */
export type GlueMetric = 'accuracy' | 'f1' | 'mcc' | 'pearson' | 'spearman';

export type GlueTaskName = 'CoLA' | 'SST-2' | 'MRPC' | 'STS-B' | 'QQP' | 'MNLI' | 'QNLI' | 'RTE' | 'WNLI';

/**
 * Where the fields of one split's TSV sit. Column numbers are 0-based; `label: -1` means the last
 * column. `headerNames` pins the header cells at those positions, so a file of another layout is
 * refused instead of being read into the wrong fields.
 */
export interface GlueSplitLayout {
  file: string;
  header: boolean;
  columns: number;
  /** Column holding the example id (`index`, `id`); null: the row number (0-based) is the id. */
  id: number | null;
  textA: number;
  textB?: number;
  /** Absent for test splits, which carry no labels. */
  label?: number;
  headerNames?: Record<number, string>;
}

export interface GlueTask {
  /** The name GLUE spells it with, also its folder name. */
  name: GlueTaskName;
  /** Accepted spellings, compared case-insensitively with `-`/`_` dropped. */
  aliases: string[];
  folder: string;
  /** Split name → file layout. MNLI has dev_matched/dev_mismatched/test_matched/test_mismatched. */
  splits: Record<string, GlueSplitLayout>;
  trainSplit: string;
  /** The splits GLUE reports dev scores on. */
  devSplits: string[];
  testSplits: string[];
  kind: 'single' | 'pair';
  /** Class names in label-index order (the order predictions and heads use); null for regression. */
  labels: string[] | null;
  regression: boolean;
  metrics: GlueMetric[];
  mainMetric: GlueMetric;
  /** Test split → file name of the GLUE submission; `format`: class name, or score with 3 decimals. */
  submission: { files: Record<string, string>; format: 'label' | 'score' };
  /** How `modtune data pull` obtains it: one official zip, or MRPC's three-file build. */
  download: { kind: 'zip'; file: string } | { kind: 'mrpc' };
}

const BINARY = ['0', '1'];
const NLI2 = ['entailment', 'not_entailment'];
/** The order of the Hugging Face `glue` dataset; every artifact records the label list it used. */
const NLI3 = ['entailment', 'neutral', 'contradiction'];

const TEST_INDEX_SENTENCE = { header: true, columns: 2, id: 0, textA: 1, headerNames: { 0: 'index', 1: 'sentence' } };

function pairSplits(names: [string, string], withLabelHeader: string): Record<string, GlueSplitLayout> {
  const headerNames = { 0: 'index', 1: names[0], 2: names[1] };
  return {
    train: { file: 'train.tsv', header: true, columns: 4, id: 0, textA: 1, textB: 2, label: 3, headerNames: { ...headerNames, 3: withLabelHeader } },
    dev: { file: 'dev.tsv', header: true, columns: 4, id: 0, textA: 1, textB: 2, label: 3, headerNames: { ...headerNames, 3: withLabelHeader } },
    test: { file: 'test.tsv', header: true, columns: 3, id: 0, textA: 1, textB: 2, headerNames },
  };
}

const MNLI_PREFIX = ['index', 'promptID', 'pairID', 'genre', 'sentence1_binary_parse', 'sentence2_binary_parse', 'sentence1_parse', 'sentence2_parse', 'sentence1', 'sentence2'];
const MNLI_NAMES = { 0: 'index', 8: 'sentence1', 9: 'sentence2' };
const mnliTrain: GlueSplitLayout = { file: 'train.tsv', header: true, columns: 12, id: 0, textA: 8, textB: 9, label: 11, headerNames: { ...MNLI_NAMES, 11: 'gold_label' } };
const mnliDev = (file: string): GlueSplitLayout => ({ file, header: true, columns: 16, id: 0, textA: 8, textB: 9, label: 15, headerNames: { ...MNLI_NAMES, 15: 'gold_label' } });
const mnliTest = (file: string): GlueSplitLayout => ({ file, header: true, columns: MNLI_PREFIX.length, id: 0, textA: 8, textB: 9, headerNames: MNLI_NAMES });

export const GLUE_TASKS: Record<GlueTaskName, GlueTask> = {
  CoLA: {
    name: 'CoLA', aliases: ['cola'], folder: 'CoLA', kind: 'single', labels: BINARY, regression: false,
    splits: {
      // No header: source, label, original label, sentence. The test split has `index, sentence`.
      train: { file: 'train.tsv', header: false, columns: 4, id: null, textA: 3, label: 1 },
      dev: { file: 'dev.tsv', header: false, columns: 4, id: null, textA: 3, label: 1 },
      test: { file: 'test.tsv', ...TEST_INDEX_SENTENCE },
    },
    trainSplit: 'train', devSplits: ['dev'], testSplits: ['test'],
    metrics: ['mcc'], mainMetric: 'mcc',
    submission: { files: { test: 'CoLA.tsv' }, format: 'label' }, download: { kind: 'zip', file: 'CoLA.zip' },
  },
  'SST-2': {
    name: 'SST-2', aliases: ['sst2', 'sst'], folder: 'SST-2', kind: 'single', labels: BINARY, regression: false,
    splits: {
      train: { file: 'train.tsv', header: true, columns: 2, id: null, textA: 0, label: 1, headerNames: { 0: 'sentence', 1: 'label' } },
      dev: { file: 'dev.tsv', header: true, columns: 2, id: null, textA: 0, label: 1, headerNames: { 0: 'sentence', 1: 'label' } },
      test: { file: 'test.tsv', ...TEST_INDEX_SENTENCE },
    },
    trainSplit: 'train', devSplits: ['dev'], testSplits: ['test'],
    metrics: ['accuracy'], mainMetric: 'accuracy',
    submission: { files: { test: 'SST-2.tsv' }, format: 'label' }, download: { kind: 'zip', file: 'SST-2.zip' },
  },
  MRPC: {
    name: 'MRPC', aliases: ['mrpc'], folder: 'MRPC', kind: 'pair', labels: BINARY, regression: false,
    splits: {
      // The header starts with a UTF-8 byte-order mark (inherited from the Microsoft release).
      train: { file: 'train.tsv', header: true, columns: 5, id: null, textA: 3, textB: 4, label: 0, headerNames: { 0: 'Quality', 3: '#1 String', 4: '#2 String' } },
      dev: { file: 'dev.tsv', header: true, columns: 5, id: null, textA: 3, textB: 4, label: 0, headerNames: { 0: 'Quality', 3: '#1 String', 4: '#2 String' } },
      test: { file: 'test.tsv', header: true, columns: 5, id: 0, textA: 3, textB: 4, headerNames: { 0: 'index', 3: '#1 String', 4: '#2 String' } },
    },
    trainSplit: 'train', devSplits: ['dev'], testSplits: ['test'],
    metrics: ['f1', 'accuracy'], mainMetric: 'f1',
    submission: { files: { test: 'MRPC.tsv' }, format: 'label' }, download: { kind: 'mrpc' },
  },
  'STS-B': {
    name: 'STS-B', aliases: ['stsb', 'sts'], folder: 'STS-B', kind: 'pair', labels: null, regression: true,
    splits: {
      train: { file: 'train.tsv', header: true, columns: 10, id: 0, textA: 7, textB: 8, label: 9, headerNames: { 0: 'index', 7: 'sentence1', 8: 'sentence2', 9: 'score' } },
      dev: { file: 'dev.tsv', header: true, columns: 10, id: 0, textA: 7, textB: 8, label: 9, headerNames: { 0: 'index', 7: 'sentence1', 8: 'sentence2', 9: 'score' } },
      test: { file: 'test.tsv', header: true, columns: 9, id: 0, textA: 7, textB: 8, headerNames: { 0: 'index', 7: 'sentence1', 8: 'sentence2' } },
    },
    trainSplit: 'train', devSplits: ['dev'], testSplits: ['test'],
    metrics: ['pearson', 'spearman'], mainMetric: 'pearson',
    submission: { files: { test: 'STS-B.tsv' }, format: 'score' }, download: { kind: 'zip', file: 'STS-B.zip' },
  },
  QQP: {
    name: 'QQP', aliases: ['qqp'], folder: 'QQP', kind: 'pair', labels: BINARY, regression: false,
    splits: {
      train: { file: 'train.tsv', header: true, columns: 6, id: 0, textA: 3, textB: 4, label: 5, headerNames: { 0: 'id', 3: 'question1', 4: 'question2', 5: 'is_duplicate' } },
      dev: { file: 'dev.tsv', header: true, columns: 6, id: 0, textA: 3, textB: 4, label: 5, headerNames: { 0: 'id', 3: 'question1', 4: 'question2', 5: 'is_duplicate' } },
      test: { file: 'test.tsv', header: true, columns: 3, id: 0, textA: 1, textB: 2, headerNames: { 0: 'id', 1: 'question1', 2: 'question2' } },
    },
    trainSplit: 'train', devSplits: ['dev'], testSplits: ['test'],
    metrics: ['accuracy', 'f1'], mainMetric: 'accuracy',
    submission: { files: { test: 'QQP.tsv' }, format: 'label' }, download: { kind: 'zip', file: 'QQP-clean.zip' },
  },
  MNLI: {
    name: 'MNLI', aliases: ['mnli', 'multinli'], folder: 'MNLI', kind: 'pair', labels: NLI3, regression: false,
    splits: {
      train: mnliTrain,
      dev_matched: mnliDev('dev_matched.tsv'),
      dev_mismatched: mnliDev('dev_mismatched.tsv'),
      test_matched: mnliTest('test_matched.tsv'),
      test_mismatched: mnliTest('test_mismatched.tsv'),
    },
    trainSplit: 'train', devSplits: ['dev_matched', 'dev_mismatched'], testSplits: ['test_matched', 'test_mismatched'],
    metrics: ['accuracy'], mainMetric: 'accuracy',
    submission: { files: { test_matched: 'MNLI-m.tsv', test_mismatched: 'MNLI-mm.tsv' }, format: 'label' },
    download: { kind: 'zip', file: 'MNLI.zip' },
  },
  QNLI: {
    name: 'QNLI', aliases: ['qnli'], folder: 'QNLI', kind: 'pair', labels: NLI2, regression: false,
    splits: pairSplits(['question', 'sentence'], 'label'),
    trainSplit: 'train', devSplits: ['dev'], testSplits: ['test'],
    metrics: ['accuracy'], mainMetric: 'accuracy',
    submission: { files: { test: 'QNLI.tsv' }, format: 'label' }, download: { kind: 'zip', file: 'QNLIv2.zip' },
  },
  RTE: {
    name: 'RTE', aliases: ['rte'], folder: 'RTE', kind: 'pair', labels: NLI2, regression: false,
    splits: pairSplits(['sentence1', 'sentence2'], 'label'),
    trainSplit: 'train', devSplits: ['dev'], testSplits: ['test'],
    metrics: ['accuracy'], mainMetric: 'accuracy',
    submission: { files: { test: 'RTE.tsv' }, format: 'label' }, download: { kind: 'zip', file: 'RTE.zip' },
  },
  WNLI: {
    name: 'WNLI', aliases: ['wnli'], folder: 'WNLI', kind: 'pair', labels: BINARY, regression: false,
    splits: pairSplits(['sentence1', 'sentence2'], 'label'),
    trainSplit: 'train', devSplits: ['dev'], testSplits: ['test'],
    metrics: ['accuracy'], mainMetric: 'accuracy',
    submission: { files: { test: 'WNLI.tsv' }, format: 'label' }, download: { kind: 'zip', file: 'WNLI.zip' },
  },
};

const squash = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');

/** Look a task up by any of its spellings (`sst2`, `SST-2`, `sst-2`, `STS_B`...). */
export function getGlueTask(name: string | GlueTask): GlueTask {
  if (typeof name !== 'string') return name;
  const key = squash(name);
  for (const task of Object.values(GLUE_TASKS)) {
    if (squash(task.name) === key || task.aliases.some((a) => squash(a) === key)) return task;
  }
  throw new ModtuneError(`unknown GLUE task '${name}': expected one of ${Object.keys(GLUE_TASKS).join(', ')}`);
}

/** The split layout, accepting `validation` for the single dev split and `dev` for MNLI's matched one. */
export function getGlueSplit(task: GlueTask, split: string): { name: string; layout: GlueSplitLayout } {
  let name = split;
  if (!(name in task.splits)) {
    if ((name === 'dev' || name === 'validation') && task.devSplits.length >= 1) name = task.devSplits[0]!;
    else if (name === 'test' && task.testSplits.length >= 1) name = task.testSplits[0]!;
    else if (name === 'dev_m' || name === 'matched') name = 'dev_matched';
    else if (name === 'dev_mm' || name === 'mismatched') name = 'dev_mismatched';
  }
  const layout = task.splits[name];
  if (!layout) throw new ModtuneError(`GLUE task ${task.name} has no split '${split}': expected one of ${Object.keys(task.splits).join(', ')}`);
  return { name, layout };
}

/** Number of outputs a head needs: the class count, or 1 for regression. */
export function glueNumLabels(task: GlueTask): number {
  return task.labels ? task.labels.length : 1;
}
