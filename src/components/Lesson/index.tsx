/**
 * Lesson page layout. In MDX:
 *
 *   <LessonLayout>
 *   <LessonLab>
 *   <Terminal lab="network-stack" />
 *   </LessonLab>
 *
 *   ...the lesson's Markdown...
 *   </LessonLayout>
 *
 * On wide screens the lab (terminal) sits in a sticky column beside the prose,
 * as tall as the window; on narrow screens it comes first, above the prose.
 * With `hide_title: true` in the front matter the layout shows the title itself,
 * at the top of the prose column, so the lab column starts at the top of the page.
 */
import React, { Children, isValidElement, type ReactNode } from 'react';
import clsx from 'clsx';
import { useDoc } from '@docusaurus/plugin-content-docs/client';
import RoomBanner from '../Room/RoomBanner';
import styles from './styles.module.css';

export function LessonLab({ children }: { children?: ReactNode }): ReactNode {
  return <>{children}</>;
}

export function LessonLayout({ children }: { children?: ReactNode }): ReactNode {
  const all = Children.toArray(children);
  const lab = all.filter((child) => isValidElement(child) && child.type === LessonLab);
  const prose = all.filter((child) => !lab.includes(child));
  return <Split lab={lab} prose={prose} />;
}

function Split({ lab, prose }: { lab: ReactNode[]; prose: ReactNode[] }): ReactNode {
  const { metadata, frontMatter } = useDoc();
  const hasLab = lab.length > 0;
  // `markdown` again on the columns, so the theme's `.markdown > h2` rhythm applies inside them.
  return (
    <div className={clsx(hasLab && styles.layout, 'vethlab-lesson')}>
      {frontMatter.hide_title && (
        <header className={clsx(styles.title, 'markdown')}>
          <h1>{metadata.title}</h1>
        </header>
      )}
      {hasLab && (
        <aside className={styles.lab}>
          <RoomBanner />
          {lab}
        </aside>
      )}
      <div className={clsx(styles.prose, 'markdown')}>{prose}</div>
    </div>
  );
}
