// Runs the unit tests: esbuild turns test/*.test.ts into plain ES modules in a temporary
// folder (nothing is written inside the repository), then Node's own test runner runs them.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const testDir = join(web, "test");
const entries = readdirSync(testDir)
  .filter((name) => name.endsWith(".test.ts"))
  .map((name) => join(testDir, name));
const outdir = mkdtempSync(join(tmpdir(), "rtserver-web-tests-"));
try {
  await build({
    entryPoints: entries,
    outdir,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "inline",
    outExtension: { ".js": ".mjs" },
    logLevel: "warning",
  });
  const files = readdirSync(outdir)
    .filter((name) => name.endsWith(".mjs"))
    .map((name) => join(outdir, name));
  const result = spawnSync(process.execPath, ["--enable-source-maps", "--test", ...files], {
    stdio: "inherit",
    env: { ...process.env, RT_VECTORS_DIR: resolve(web, "..", "protocol", "vectors") },
  });
  process.exitCode = result.status ?? 1;
} finally {
  rmSync(outdir, { recursive: true, force: true });
}
