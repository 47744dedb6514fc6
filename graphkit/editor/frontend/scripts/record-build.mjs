// After `vite build`: record in dist/build-info.json a hash of the sources the bundle was
// built from. graphkit's tests recompute it (graphkit/editor/bundle.py, same rule) and fail
// when the committed bundle is older than its sources.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SOURCES = ["package.json", "package-lock.json", "vite.config.js", "tsconfig.json", "src"];

function files(path) {
  const full = join(ROOT, path);
  if (!statSync(full, { throwIfNoEntry: false })) return [];
  if (statSync(full).isFile()) return [path];
  return readdirSync(full).flatMap((name) => files(join(path, name)));
}

const listed = SOURCES.flatMap(files)
  .map((p) => relative(".", p).split(sep).join("/"))
  .sort();
const total = createHash("sha256");
for (const path of listed) {
  const text = readFileSync(join(ROOT, path)).toString("latin1").replaceAll("\r\n", "\n");
  const digest = createHash("sha256").update(Buffer.from(text, "latin1")).digest("hex");
  total.update(`${path}\0${digest}\n`);
}
const built = readdirSync(join(ROOT, "dist")).filter((n) => n !== "build-info.json").sort();
const info = { sources: total.digest("hex"), files: listed, built };
writeFileSync(join(ROOT, "dist", "build-info.json"), JSON.stringify(info, null, 2) + "\n");
console.log(`recorded sources ${info.sources.slice(0, 12)} for ${built.join(", ")}`);
