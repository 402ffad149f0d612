/**
 * How the pages reach the lab-server: its address (the site's `labServer`
 * field when the site is served elsewhere, else this page's origin), its
 * JSON API with the learner's or instructor's cookie, and its WebSockets.
 * One place, so the lesson panel, the workshop pages and the dashboard agree.
 */
import { useCallback } from 'react';
import useDocusaurusContext from '@docusaurus/useDocusaurusContext';

/** An answer of the API that was not 2xx: its message is the server's, for the learner to read. */
export class LabServerError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export function useLabServer() {
  const { siteConfig } = useDocusaurusContext();
  const base = typeof siteConfig.customFields?.labServer === 'string' ? siteConfig.customFields.labServer : '';
  const call = useCallback(
    async <T,>(method: string, path: string, body?: unknown): Promise<T> => {
      const res = await fetch(`${base}${path}`, {
        method,
        credentials: base ? 'include' : 'same-origin',
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
      const json = (await res.json().catch(() => null)) as (T & { error?: string; code?: string }) | null;
      if (!res.ok) throw new LabServerError(json?.error ?? `HTTP ${res.status}`, res.status, json?.code);
      return json as T;
    },
    [base],
  );
  const wsUrl = useCallback((path: string) => (base || window.location.origin).replace(/^http/, 'ws') + path, [base]);
  return { base, call, wsUrl };
}
