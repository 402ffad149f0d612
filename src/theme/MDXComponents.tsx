/**
 * Components every lesson can use without importing them.
 */
import MDXComponents from '@theme-original/MDXComponents';
import Terminal from '@site/src/components/Terminal';
import Lab from '@site/src/components/Lab';
import { LessonLab, LessonLayout } from '@site/src/components/Lesson';

export default {
  ...MDXComponents,
  Terminal,
  Lab,
  LessonLayout,
  LessonLab,
};
