/**
 * Click-to-run code blocks: a fenced block with `run` in its meta
 * (```bash run, or ```bash run=host-b for a lab with several terminals) gets
 * a "▶ Run" button that types the command into the lesson's terminal, Enter
 * included, through the terminal's own input path: the learner sees it typed
 * and owns the shell. Every other block is the theme's own, unchanged.
 */
import React, { useEffect, useState, type ReactNode } from 'react';
import clsx from 'clsx';
import CodeBlock from '@theme-original/CodeBlock';
import type CodeBlockType from '@theme/CodeBlock';
import type { WrapperProps } from '@docusaurus/types';
import { translate } from '@docusaurus/Translate';
import { onTerminals, runInTerminal, targetTerminal, type RunResult } from '@site/src/components/Terminal';
import styles from './styles.module.css';

type Props = WrapperProps<typeof CodeBlockType>;

/** `run` → the page's first terminal; `run=host-b` → the terminal with that id. */
export function runTarget(metastring: string | undefined): { run: boolean; terminal?: string } {
  const word = (metastring ?? '').split(/\s+/).find((w) => w === 'run' || w.startsWith('run='));
  if (!word) return { run: false };
  const terminal = word.slice(4);
  return terminal ? { run: true, terminal } : { run: true };
}

/** The code of a block, as MDX hands it over (a string, possibly with a final newline). */
function codeOf(children: ReactNode): string | null {
  if (typeof children === 'string') return children;
  if (Array.isArray(children) && children.every((c) => typeof c === 'string')) return children.join('');
  return null;
}

export default function CodeBlockWrapper(props: Props): ReactNode {
  const { run, terminal } = runTarget(props.metastring);
  const code = codeOf(props.children);
  if (!run || code === null) return <CodeBlock {...props} />;
  const command = code.replace(/\n+$/, '');
  return (
    <div className={styles.runnable}>
      <CodeBlock {...props} />
      <RunButton command={command} terminal={terminal} />
    </div>
  );
}

function RunButton({ command, terminal }: { command: string; terminal?: string }): ReactNode {
  // Ready while the target terminal is attached to its shell (known only in the browser).
  const [ready, setReady] = useState(false);
  const [result, setResult] = useState<RunResult | null>(null);
  useEffect(() => {
    const update = () => setReady(targetTerminal(terminal)?.ready() ?? false);
    update();
    return onTerminals(update);
  }, [terminal]);
  useEffect(() => {
    if (!result) return;
    const timer = setTimeout(() => setResult(null), result === 'typed' ? 1200 : 3500);
    return () => clearTimeout(timer);
  }, [result]);

  const label = translate({ id: 'codeblock.run', message: 'Run', description: 'Button on a runnable code block' });
  const title = terminal
    ? translate(
        { id: 'codeblock.run.titleHost', message: 'Type this into the terminal of {host}', description: 'Tooltip of the Run button naming the terminal' },
        { host: terminal },
      )
    : translate({ id: 'codeblock.run.title', message: 'Type this into the terminal' });
  const message =
    result === 'not-ready'
      ? translate({ id: 'codeblock.run.notReady', message: 'The terminal is not connected yet.' })
      : result === 'no-terminal'
        ? translate({ id: 'codeblock.run.noTerminal', message: 'There is no terminal on this page to run it in.' })
        : null;

  return (
    <div className={styles.runBar}>
      {message && (
        <span className={styles.runMessage} role="status">
          {message}
        </span>
      )}
      <button
        type="button"
        className={clsx(styles.run, result === 'typed' && styles.runDone)}
        data-run-command={command}
        data-run-terminal={terminal}
        data-ready={ready ? 'true' : 'false'}
        title={title}
        aria-label={`${label}: ${command.split('\n')[0]}${command.includes('\n') ? ' …' : ''}`}
        onClick={() => setResult(runInTerminal(command, terminal))}
      >
        <span aria-hidden="true" className={styles.runIcon}>
          ▶
        </span>
        {label}
        {terminal && <span className={styles.runHost}>{terminal}</span>}
      </button>
    </div>
  );
}
