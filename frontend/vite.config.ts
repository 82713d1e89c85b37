import { copyFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { svelte } from '@sveltejs/vite-plugin-svelte'
import type { Plugin } from 'vite'
import { defineConfig } from 'vitest/config'

// The API reference at /api/docs: Swagger UI 5 (reads OpenAPI 3.1) from the npm package,
// copied into dist/api-docs and served by the backend; no CDN.
const API_DOCS_FILES = ['swagger-ui-bundle.js', 'swagger-ui.css']

function apiDocs(): Plugin {
  return {
    name: 'gust-api-docs',
    apply: 'build',
    closeBundle() {
      const require = createRequire(import.meta.url)
      const source = dirname(require.resolve('swagger-ui-dist/package.json'))
      const target = join('dist', 'api-docs')
      mkdirSync(target, { recursive: true })
      for (const file of API_DOCS_FILES) copyFileSync(join(source, file), join(target, file))
    },
  }
}

// The server's Content-Security-Policy allows scripts from 'self' only: the build must
// emit no inline script, and every asset lands flat in dist/assets (served at /assets/).
export default defineConfig({
  plugins: [svelte(), apiDocs()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    target: 'es2022',
    // Inlined fonts or images would be data: URLs; scripts are never inlined.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1200,
  },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:8100',
      '/chat': 'http://127.0.0.1:8100',
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
})
