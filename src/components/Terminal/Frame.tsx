/**
 * The terminal's outer box: a status bar (connection dot and text, lab id)
 * above a dark screen area. Shared by the placeholder that is rendered on the
 * server and by the live widget, so nothing moves when xterm.js arrives.
 */
import React, { type CSSProperties, type ReactNode, type Ref } from 'react';
import clsx from 'clsx';
import type { ConnectionState } from './connection';
import { labLabel, terminalAriaLabel } from './texts';
import styles from './styles.module.css';

export interface FrameProps {
  lab: string;
  terminalId: string;
  state: ConnectionState;
  /** Is the placeholder (xterm.js not loaded yet). */
  loading?: boolean;
  statusText: string;
  height?: number | string;
  /** The element xterm.js opens in. */
  screenRef?: Ref<HTMLDivElement>;
  /** Shown over the screen (while connecting). */
  overlay?: ReactNode;
  /** Shown under the screen, which shrinks to make room (a message and an action). */
  footer?: ReactNode;
}

export default function Frame({ lab, terminalId, state, loading, statusText, height, screenRef, overlay, footer }: FrameProps): ReactNode {
  const style: CSSProperties | undefined =
    height === undefined ? undefined : { height: typeof height === 'number' ? `${height}px` : height };
  return (
    <div
      className={clsx(styles.frame, 'vethlab-terminal')}
      data-terminal={terminalId}
      data-state={state}
      data-loading={loading ? 'true' : undefined}
      style={style}
    >
      <div className={styles.bar}>
        <span className={clsx(styles.dot, styles[`dot-${loading ? 'loading' : state}`])} aria-hidden="true" />
        <span className={styles.statusText} role="status" aria-live="polite">
          {statusText}
        </span>
        <span className={styles.labName}>
          <span className={styles.labLabel}>{labLabel()}</span>
          <code>{lab}</code>
          {terminalId !== 'main' && <code className={styles.termName}>{terminalId}</code>}
        </span>
      </div>
      <div className={styles.screenWrap}>
        <div className={styles.screen} ref={screenRef} aria-label={terminalAriaLabel()} />
        {overlay}
      </div>
      {footer}
    </div>
  );
}
