import type { Config, LoadContext, Plugin } from '@docusaurus/types';
import type * as Preset from '@docusaurus/preset-classic';
import { themes as prismThemes } from 'prism-react-renderer';

/** Where `npm run dev` finds the lab-server (the dev server proxies /api to it). */
const DEV_API_TARGET = process.env.VETHLAB_DEV_API ?? 'http://localhost:3000';

/**
 * The site's own webpack tweaks, as a local plugin:
 *
 * - package.json says "type": "module", so webpack would parse the `.js`
 *   files Docusaurus generates in .docusaurus/ (which use `require`) as strict
 *   ES modules and the page would fail with "require is not defined"
 *   (facebook/docusaurus#9653). Parse those as `javascript/auto`.
 * - Dev mode only: the dev server (port 3001) forwards /api, HTTP and
 *   WebSocket, to the lab-server, so the page talks to one origin exactly as
 *   in production, where the lab-server serves the built site itself.
 */
function vethlabSite(context: LoadContext): Plugin {
  return {
    name: 'vethlab-site',
    configureWebpack(_config, isServer) {
      const rules = { module: { rules: [{ test: /\.js$/, include: [context.generatedFilesDir], type: 'javascript/auto' }] } };
      if (isServer || process.env.NODE_ENV !== 'development') return rules;
      // webpack-dev-server 5: an array of proxy entries (http-proxy-middleware).
      const devServer = { proxy: [{ context: ['/api'], target: DEV_API_TARGET, ws: true }] };
      // `devServer` is not in webpack's Configuration type, but Docusaurus merges
      // it into the dev server's options (@docusaurus/core lib/commands/start/webpack.js).
      return { ...rules, devServer } as typeof rules;
    },
  };
}

const config: Config = {
  title: 'vethlab',
  tagline: 'Learn container networking hands-on, with a real terminal into a Docker host of your own.',
  favicon: 'img/favicon.svg',

  url: 'http://localhost',
  baseUrl: '/',

  onBrokenLinks: 'throw',
  onBrokenAnchors: 'throw',
  onDuplicateRoutes: 'throw',

  markdown: {
    hooks: {
      onBrokenMarkdownLinks: 'throw',
      onBrokenMarkdownImages: 'throw',
    },
  },

  i18n: {
    defaultLocale: 'en',
    locales: ['en', 'zh-Hans'],
    localeConfigs: {
      en: { label: 'English', htmlLang: 'en' },
      'zh-Hans': { label: '简体中文', htmlLang: 'zh-Hans' },
    },
  },

  customFields: {
    /** Origin of the lab-server API; empty means the page's own origin. */
    labServer: process.env.VETHLAB_LAB_SERVER ?? '',
  },

  presets: [
    [
      'classic',
      {
        docs: {
          routeBasePath: 'docs',
          sidebarPath: './sidebars.ts',
          breadcrumbs: false,
        },
        blog: false,
        theme: {
          customCss: './src/css/custom.css',
        },
        sitemap: false,
      } satisfies Preset.Options,
    ],
  ],

  plugins: [vethlabSite],

  // Offline search: the index is built with the site, no external service.
  themes: [
    [
      '@easyops-cn/docusaurus-search-local',
      {
        hashed: true,
        language: ['en', 'zh'],
        indexBlog: false,
        docsRouteBasePath: '/docs',
        highlightSearchTermsOnTargetPage: true,
      },
    ],
  ],

  themeConfig: {
    colorMode: {
      respectPrefersColorScheme: true,
    },
    docs: {
      sidebar: {
        hideable: true,
      },
    },
    navbar: {
      title: 'vethlab',
      logo: {
        alt: 'vethlab logo',
        src: 'img/logo.svg',
      },
      items: [
        {
          type: 'docSidebar',
          sidebarId: 'lessons',
          position: 'left',
          label: 'Lessons',
        },
        {
          type: 'localeDropdown',
          position: 'right',
        },
      ],
    },
    footer: {
      style: 'dark',
      links: [
        { label: 'Home', to: '/' },
        { label: 'Lesson 1: The network stack', to: '/docs/network-stack' },
      ],
      copyright: 'vethlab: learn container networking by doing it.',
    },
    prism: {
      theme: prismThemes.github,
      darkTheme: prismThemes.dracula,
      additionalLanguages: ['bash'],
    },
  } satisfies Preset.ThemeConfig,
};

export default config;
