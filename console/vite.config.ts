// Builds the console into dist/, which the host embeds and serves at /console/.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/console/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The host serves these; no source maps in the binary.
    sourcemap: false,
    // Leaflet and Chart.js are loaded on the pages that need them.
    chunkSizeWarningLimit: 250,
  },
  server: {
    // `npm exec vite` during development: the API from a running host.
    proxy: { '/api': 'http://127.0.0.1:8000' },
  },
});
