// Builds the browser assets into ../rtserver/static/, the folder the server serves at /static/
// and the Python wheel ships: the <rt-chat> bundle, the client library and the demo app.
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const web = dirname(fileURLToPath(import.meta.url));
const out = resolve(web, "..", "rtserver", "static");

mkdirSync(out, { recursive: true });
// Start clean so that a renamed or removed asset does not linger in the wheel; .gitkeep stays
// because it keeps the (otherwise ignored) folder in git.
for (const name of readdirSync(out)) {
  if (name !== ".gitkeep") rmSync(join(out, name), { recursive: true, force: true });
}

const common = {
  absWorkingDir: web,
  bundle: true,
  minify: true,
  sourcemap: "linked",
  target: ["es2022", "chrome100", "firefox100", "safari16"],
  outdir: out,
  logLevel: "warning",
};

await Promise.all([
  // A classic script (IIFE): embeddable from any origin without CORS.
  build({ ...common, entryPoints: { "rt-chat": "src/element/define.ts" }, format: "iife" }),
  build({ ...common, entryPoints: { rtclient: "src/client/index.ts" }, format: "esm" }),
  build({ ...common, entryPoints: { app: "demo/app.ts" }, format: "iife" }),
]);
for (const name of ["index.html", "app.css"])
  copyFileSync(join(web, "demo", name), join(out, name));
console.log(
  `built ${readdirSync(out)
    .filter((n) => n !== ".gitkeep")
    .join(", ")} into ${out}`,
);
