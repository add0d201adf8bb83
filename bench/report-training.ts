/**
 * The README's training-throughput table, from a training bench report:
 *   npx tsx bench/report-training.ts [bench/results/latest-training.json]
 * Prints Markdown: per model, selection and batch, our examples/s and PyTorch's from the same run,
 * their ratio, our step over our forward (from the separate runs, and from forward/step pairs run back to
 * back in one process when the report has them), peak RSS of both, and our `full` step with 4 KiB pages.
 * Ours run with huge-page malloc as the CLI does; PyTorch's number is the faster of its runs with and
 * without it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

interface Step { stepMsMedian: number; examplesPerSec: number; peakRssMB: number }
interface TrainEntry extends Step {
  paired?: { pairs: number; forwardMsMedian: number; stepMsMedian: number; stepOverForwardMedian: number } | null;
  pytorch: { examplesPerSec: number; stepMsMedian: number; peakRssMB: number; malloc?: string } | null;
  speedupOverPytorch: number | null;
  smallPages?: (Step & { speedupOverPytorch: number | null }) | null;
}
interface ModelEntry {
  model: string;
  train: Record<string, TrainEntry>;
  inference: Record<string, Step & { pytorch: { forwardMsMedian: number; peakRssMB: number } | null; speedupOverPytorch: number | null }>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const file = process.argv[2] ?? path.join(here, 'results', 'latest-training.json');
const report = JSON.parse(fs.readFileSync(file, 'utf8'));
const models: ModelEntry[] = report.results.training.results;
const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`);
const x = (v: number | null | undefined) => (v == null ? '–' : `${v.toFixed(2)}×`);
const lines = [
  `Measured ${report.date.slice(0, 16).replace('T', ' ')} UTC, ${report.results.training.threads} threads, medians of ${report.results.training.steps - 2} steps after 2 warm-up steps; ours with ${report.results.training.malloc === 'default' || !report.results.training.malloc ? "glibc's default malloc" : `\`${report.results.training.malloc}\``}${report.results.training.pairs ? `; paired ratios: medians of ${report.results.training.pairs} forward/step pairs, each run 50 ms after the last` : ''}.`,
  '',
  '| model | selection | batch | modtune step | PyTorch step | speed ratio | step ÷ our forward (separate / paired) | peak RSS (ours / PyTorch) | ours with 4 KiB pages |',
  '|---|---|---|---|---|---|---|---|---|',
];
for (const m of models) {
  const fwd = m.inference;
  lines.push(`| ${m.model} | forward | 32 | ${ms(fwd['32x128']!.stepMsMedian)} | ${fwd['32x128']!.pytorch ? ms(fwd['32x128']!.pytorch.forwardMsMedian) : '–'} | **${x(fwd['32x128']!.speedupOverPytorch)}** | – | ${fwd['32x128']!.peakRssMB} / ${fwd['32x128']!.pytorch?.peakRssMB.toFixed(0) ?? '–'} MB | – |`);
  for (const spec of ['layernorm', 'full']) {
    for (const b of ['32', '8']) {
      const t = m.train[`${spec}@${b}x128`];
      if (!t) continue;
      const over = (t.stepMsMedian / fwd[`${b}x128`]!.stepMsMedian).toFixed(2) + (t.paired ? ` / ${t.paired.stepOverForwardMedian.toFixed(2)}` : '');
      const small = t.smallPages ? `${ms(t.smallPages.stepMsMedian)}, ${x(t.smallPages.speedupOverPytorch)}, ${t.smallPages.peakRssMB} MB` : '–';
      lines.push(`| ${m.model} | \`${spec}\` | ${b} | ${ms(t.stepMsMedian)} | ${t.pytorch ? ms(t.pytorch.stepMsMedian) : '–'} | **${x(t.speedupOverPytorch)}** | ${over} | ${t.peakRssMB} / ${t.pytorch?.peakRssMB.toFixed(0) ?? '–'} MB | ${small} |`);
    }
  }
}
process.stdout.write(lines.join('\n') + '\n');
