/**
 * Builds `dist/` once per test run, as `npm run build` does, for the tests
 * that run the gateway and the admin command as a user would
 * (`node dist/main.js`, `node dist/admin/cli.js`) and for the console's
 * browser files, which every gateway serves from `dist/console/browser/`.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export function setup(): void {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-b", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
  execFileSync(process.execPath, ["dist/console/console-bundle.js"], { cwd: root, stdio: "inherit" });
}
