/**
 * /dashboard: the instructor's and assistants' workshop page (signed in at
 * /instructor; the cookie is HttpOnly and no token is ever in a URL). The
 * live part needs the browser (WebSocket, xterm.js), so it loads on the
 * client only.
 */
import React, { lazy, Suspense, type ReactNode } from 'react';
import Layout from '@theme/Layout';
import BrowserOnly from '@docusaurus/BrowserOnly';
import { translate } from '@docusaurus/Translate';

const Dashboard = lazy(() => import('../components/Room/Dashboard'));

export default function DashboardPage(): ReactNode {
  return (
    <Layout title={translate({ id: 'dashboard.title', message: 'Workshop dashboard' })}>
      <BrowserOnly fallback={<p style={{ padding: '2rem' }}>…</p>}>
        {() => (
          <Suspense fallback={<p style={{ padding: '2rem' }}>…</p>}>
            <Dashboard />
          </Suspense>
        )}
      </BrowserOnly>
    </Layout>
  );
}
