/**
 * <Lab lab="..." />: the lab's tasks beside the lesson, turning green by
 * themselves. Client-only and lazy like the Terminal; it shares the lab's
 * session with the page's terminals through the lab bus.
 */
import React, { lazy, Suspense, type ReactNode } from 'react';
import BrowserOnly from '@docusaurus/BrowserOnly';
import Translate from '@docusaurus/Translate';
import styles from './styles.module.css';

export interface LabProps {
  lab: string;
}

const LabPanel = lazy(() => import('./LabPanel'));

function Placeholder({ lab }: LabProps): ReactNode {
  return (
    <section className={styles.panel} data-lab={lab} aria-busy="true">
      <p className={styles.muted}>
        <Translate id="lab.loading">Loading the lab…</Translate>
      </p>
    </section>
  );
}

export default function Lab(props: LabProps): ReactNode {
  const placeholder = <Placeholder {...props} />;
  return (
    <BrowserOnly fallback={placeholder}>
      {() => (
        <Suspense fallback={placeholder}>
          <LabPanel {...props} />
        </Suspense>
      )}
    </BrowserOnly>
  );
}
