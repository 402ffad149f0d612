/**
 * The live terminal: an xterm.js Terminal (DOM renderer, so its text is in the
 * page) fitted to its box, wired to a TerminalConnection. The protocol logic is
 * in ./connection; this file only glues it to React and the DOM.
 */
import React, { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { Terminal as XTerm, type ITheme } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import '@xterm/xterm/css/xterm.css';
import { registerTerminal } from '../lab-bus';
import { useLabServer } from '../lab-server';
import { TerminalConnection, type ConnectionStatus } from './connection';
import Frame from './Frame';
import type { TerminalProps } from './index';
import { connectionTexts, statusText, stopAction } from './texts';
import styles from './styles.module.css';

declare global {
  interface Window {
    /** For browser tests and the curious: the page's terminals by id. */
    __vethlabTerminals?: Record<string, { term: XTerm; send(text: string): void }>;
  }
}

/** Dark in both site colour modes (GitHub-dark-like palette). */
const THEME: ITheme = {
  background: '#0d1117',
  foreground: '#e6edf3',
  cursor: '#7ee787',
  cursorAccent: '#0d1117',
  selectionBackground: '#264f78',
  black: '#484f58',
  red: '#ff7b72',
  green: '#3fb950',
  yellow: '#d29922',
  blue: '#58a6ff',
  magenta: '#bc8cff',
  cyan: '#39c5cf',
  white: '#b1bac4',
  brightBlack: '#6e7681',
  brightRed: '#ffa198',
  brightGreen: '#56d364',
  brightYellow: '#e3b341',
  brightBlue: '#79c0ff',
  brightMagenta: '#d2a8ff',
  brightCyan: '#56d4dd',
  brightWhite: '#f0f6fc',
};

const FONT_FAMILY =
  '"DejaVu Sans Mono", "Cascadia Mono", "SF Mono", Menlo, Consolas, "Liberation Mono", "Noto Sans Mono CJK SC", "WenQuanYi Micro Hei Mono", "Sarasa Mono SC", monospace';

export default function TerminalWidget({ lab, terminal = 'main', height }: TerminalProps): ReactNode {
  const { base: labServer } = useLabServer();
  const screenRef = useRef<HTMLDivElement>(null);
  const connRef = useRef<TerminalConnection | null>(null);
  const [status, setStatus] = useState<ConnectionStatus>({ state: 'connecting', phase: 'session' });
  const [everAttached, setEverAttached] = useState(false);
  const texts = useMemo(() => connectionTexts(), []);

  useEffect(() => {
    const el = screenRef.current;
    if (!el) return;
    const term = new XTerm({
      allowProposedApi: true, // for the unicode11 addon's activeVersion
      convertEol: false,
      cursorBlink: true,
      fontFamily: FONT_FAMILY,
      fontSize: 13,
      lineHeight: 1.15,
      scrollback: 5000,
      theme: THEME,
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.loadAddon(new Unicode11Addon());
    term.unicode.activeVersion = '11';
    term.open(el);
    const refit = () => {
      try {
        if (el.clientWidth > 0 && el.clientHeight > 0) fit.fit();
      } catch {
        // not laid out yet
      }
    };
    refit();

    const conn = new TerminalConnection({
      lab,
      terminalId: terminal,
      sink: term,
      baseUrl: labServer || window.location.origin,
      texts,
      storage: safeLocalStorage(),
      onStatus: (s) => {
        setStatus(s);
        if (s.phase === 'attached') setEverAttached(true);
      },
    });
    connRef.current = conn;
    const onData = term.onData((data) => conn.sendInput(data));
    const onResize = term.onResize(({ cols, rows }) => conn.resize(cols, rows));

    let frame = 0;
    const observer = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(refit);
    });
    observer.observe(el);

    const registry = (window.__vethlabTerminals ??= {});
    registry[terminal] = { term, send: (text: string) => conn.sendInput(text) };
    const unregister = registerTerminal(terminal, (text) => {
      conn.sendInput(text);
      term.focus();
    });

    conn.start();
    return () => {
      cancelAnimationFrame(frame);
      unregister();
      observer.disconnect();
      onData.dispose();
      onResize.dispose();
      conn.dispose();
      connRef.current = null;
      if (registry[terminal]?.term === term) delete registry[terminal];
      term.dispose();
    };
  }, [lab, terminal, labServer, texts]);

  const act = useCallback((kind: NonNullable<ConnectionStatus['stop']>['kind']) => {
    const conn = connRef.current;
    if (!conn) return;
    if (kind === 'sandbox-gone' || kind === 'forbidden') conn.startNewSandbox();
    else conn.connect();
  }, []);

  let overlay: ReactNode = null;
  let footer: ReactNode = null;
  if (status.stop) {
    const { message, button } = stopAction(status.stop, texts);
    const kind = status.stop.kind;
    footer = (
      <div className={styles.notice} data-stop={kind}>
        <span className={styles.noticeText}>{message}</span>
        <button type="button" className={styles.noticeButton} onClick={() => act(kind)}>
          {button}
        </button>
      </div>
    );
  } else if (!everAttached) {
    overlay = (
      <div className={styles.waiting} aria-hidden="true">
        <span className={styles.spinner} />
        <span>{statusText(status)}</span>
      </div>
    );
  }

  return (
    <Frame
      lab={lab}
      terminalId={terminal}
      state={status.state}
      statusText={statusText(status)}
      height={height}
      screenRef={screenRef}
      overlay={overlay}
      footer={footer}
    />
  );
}

function safeLocalStorage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}
