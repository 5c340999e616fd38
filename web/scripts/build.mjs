// Builds dist/: ESM bundles with esbuild, declarations with tsc. `aiquota/react` keeps React external;
// `aiquota/element` bundles everything, so a plain page can load it with one <script type="module">.
import { execFileSync } from "node:child_process";
import { copyFileSync, rmSync } from "node:fs";
import { build } from "esbuild";

rmSync("dist", { recursive: true, force: true });
const common = { bundle: true, format: "esm", target: "es2022", sourcemap: true, logLevel: "warning" };
await build({ ...common, entryPoints: { index: "src/index.ts" }, outdir: "dist" });
await build({
  ...common,
  entryPoints: { react: "src/react/index.ts" },
  outdir: "dist",
  external: ["react", "react/jsx-runtime", "react-dom"],
  jsx: "automatic",
});
await build({ ...common, entryPoints: { element: "src/element/index.ts" }, outdir: "dist" });
// The demo page `make run` serves at /demo/ (AIQUOTA_DEMO_DIR=web/dist/demo).
await build({ ...common, entryPoints: { demo: "demo/demo.ts" }, outdir: "dist/demo" });
copyFileSync("demo/index.html", "dist/demo/index.html");
execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
console.log("built dist/");
