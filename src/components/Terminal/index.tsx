/**
 * <Terminal lab="..." />: a live terminal into the learner's sandbox.
 *
 * Rendered on the server (and until xterm.js has loaded) as a placeholder of
 * the same size; the real widget is browser-only and lives in its own chunk,
 * so the lesson text reads at once and xterm.js loads after it.
 */
import React, { lazy, Suspense, type ReactNode } from 'react';
import BrowserOnly from '@docusaurus/BrowserOnly';
import Frame from './Frame';
import { loadingText } from './texts';

export interface TerminalProps {
  /** Lab id, e.g. "network-stack". */
  lab: string;
  /** Terminal id within the lab's session; "main" unless the lab has several hosts. */
  terminal?: string;
  /** CSS height of the whole box (number = px). By default it fills the lesson's lab column. */
  height?: number | string;
}

const TerminalWidget = lazy(() => import('./TerminalWidget'));

function Placeholder({ lab, terminal = 'main', height }: TerminalProps): ReactNode {
  return <Frame lab={lab} terminalId={terminal} state="connecting" loading statusText={loadingText()} height={height} />;
}

export default function Terminal(props: TerminalProps): ReactNode {
  const placeholder = <Placeholder {...props} />;
  return (
    <BrowserOnly fallback={placeholder}>
      {() => (
        <Suspense fallback={placeholder}>
          <TerminalWidget {...props} />
        </Suspense>
      )}
    </BrowserOnly>
  );
}
