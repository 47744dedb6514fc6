// Builds src/index.tsx into one ES module (React and React Flow inside) and one stylesheet,
// with content-hashed names, into dist/ (shipped in the Python package).
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2020",
    modulePreload: false,
    cssCodeSplit: false,
    sourcemap: false,
    rollupOptions: {
      input: "src/index.tsx",
      preserveEntrySignatures: "exports-only",
      output: {
        entryFileNames: "canvas-[hash].js",
        assetFileNames: "canvas-[hash][extname]",
      },
    },
  },
});
