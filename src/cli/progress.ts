import cliProgress from 'cli-progress';
import type { CliIo } from './io.js';

/** Reports the steps of a long piece of work: a progress bar on a terminal, one line per step otherwise. */
export interface StepProgress {
  /** Called after each step: steps done, the step's label (ids and collection names only), steps expected. */
  readonly onStep: (done: number, step: string, total: number) => void;
  /** Ends the bar (leaving it drawn at its last state); call before writing anything else to the terminal. */
  stop(): void;
}

/**
 * A {@link StepProgress} on `io`: when stderr is a terminal (`io.tty`), a cli-progress bar with steps done/total
 * and the current step; otherwise (pipes, logs, tests) a plain line per step on stderr, `<label>[done/total] step`.
 *
 * @example
 * const progress = stepProgress(io, `${id} `);
 * try { await runner.run(id, worker, { onStep: progress.onStep }); } finally { progress.stop(); }
 */
export function stepProgress(io: CliIo, label = ''): StepProgress {
  const tty = io.tty;
  if (tty === undefined) {
    return { onStep: (done, step, total) => io.stderr(`${label}[${done}/${total}] ${step}\n`), stop: () => undefined };
  }
  let bar: cliProgress.SingleBar | undefined;
  return {
    onStep(done, step, total) {
      if (bar === undefined) {
        bar = new cliProgress.SingleBar(
          { stream: tty, format: `${escapeFormat(label)}{bar} {value}/{total} steps | {step}`, hideCursor: true, clearOnComplete: false, barsize: 30, fps: 10 },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done, { step });
        return;
      }
      if (bar.getTotal() !== total) bar.setTotal(total);
      bar.update(done, { step });
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}

/** cli-progress reads `{name}` in its format as a placeholder: keep braces of the label literal. */
function escapeFormat(text: string): string {
  return text.replace(/[{}]/g, '');
}
