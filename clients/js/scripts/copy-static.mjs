#!/usr/bin/env node
// Builds the SDK's ES modules (no declarations, no source maps) and copies them to
// server/static/sdk/, which the server serves at /static/sdk/ so that its test pages run
// on the SDK without Node on the server's machine.
//
//   node scripts/copy-static.mjs            build and copy (npm run build:static)
//   node scripts/copy-static.mjs --check    fail when the committed copy differs from a
//                                           fresh build (npm run check:static)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const sdk = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const target = resolve(sdk, "../../server/static/sdk");
const banner = "// Generated from clients/js/src by clients/js/scripts/copy-static.mjs: do not edit.\n";
const check = process.argv.includes("--check");

function build() {
  const out = mkdtempSync(join(tmpdir(), "sdk-static-"));
  const tsc = join(sdk, "node_modules", "typescript", "bin", "tsc");
  if (!existsSync(tsc)) throw new Error(`${tsc} is missing: run \`make js-sdk\` (npm ci) first`);
  execFileSync(process.execPath, [tsc, "-p", join(sdk, "tsconfig.json"), "--outDir", out, "--declaration", "false", "--sourceMap", "false"], { stdio: "inherit" });
  const files = new Map();
  for (const name of readdirSync(out).filter((n) => n.endsWith(".js")).sort()) {
    files.set(name, banner + readFileSync(join(out, name), "utf8"));
  }
  rmSync(out, { recursive: true, force: true });
  return files;
}

const committed = () => new Set(readdirSync(target).filter((n) => n.endsWith(".js")));
const fresh = build();
if (check) {
  const stale = [...fresh].filter(([name, text]) => !existsSync(join(target, name)) || readFileSync(join(target, name), "utf8") !== text).map(([name]) => name);
  const extra = [...committed()].filter((name) => !fresh.has(name));
  if (stale.length || extra.length) {
    console.error(`server/static/sdk is not a fresh build of clients/js/src: ${[...stale, ...extra].join(", ")} differ.`);
    console.error("Run `make sdk-static` (or `npm run build:static --prefix clients/js`) and commit the result.");
    process.exit(1);
  }
  console.log(`server/static/sdk: ${fresh.size} modules match a fresh build`);
} else {
  for (const name of committed()) if (!fresh.has(name)) rmSync(join(target, name));
  for (const [name, text] of fresh) writeFileSync(join(target, name), text);
  console.log(`server/static/sdk: wrote ${fresh.size} modules`);
}
