/**
 * Code blocks with `run` in their meta (```bash run, ```bash run=host-b) get
 * a Run button that types the command into the lesson's terminal.
 */
import React, { type ReactNode } from 'react';
import CodeBlock from '@theme-original/CodeBlock';
import type CodeBlockType from '@theme/CodeBlock';
import type { WrapperProps } from '@docusaurus/types';
import { translate } from '@docusaurus/Translate';
import { runInTerminal } from '@site/src/components/lab-bus';
import styles from './styles.module.css';

type Props = WrapperProps<typeof CodeBlockType>;

function runTarget(metastring: string | undefined): { run: boolean; terminal?: string } {
  const run = (metastring ?? '').split(/\s+/).find((w) => w === 'run' || w.startsWith('run='));
  if (!run) return { run: false };
  return run.startsWith('run=') ? { run: true, terminal: run.slice(4) } : { run: true };
}

export default function CodeBlockWrapper(props: Props): ReactNode {
  const { run, terminal } = runTarget(props.metastring);
  if (!run || typeof props.children !== 'string') return <CodeBlock {...props} />;
  const command = props.children;
  return (
    <div className={styles.runnable}>
      <CodeBlock {...props} />
      <button
        type="button"
        className={styles.run}
        data-run-command={command}
        title={translate({ id: 'codeblock.run.title', message: 'Type this into the terminal' })}
        onClick={() => runInTerminal(command, terminal)}
      >
        ▶ {translate({ id: 'codeblock.run', message: 'Run' })}
        {terminal ? ` (${terminal})` : ''}
      </button>
    </div>
  );
}
