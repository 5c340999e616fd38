// What the browser tests share: the environment the Rust side wrote (a real API on a fresh database), the
// test pages bundled with esbuild and served from a second origin, and Debian's chromium driven by
// playwright-core (which downloads no browser).
import { mkdtempSync, readFileSync, copyFileSync, readdirSync, mkdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";
import { chromium, type BrowserContext, type Page } from "playwright-core";

/** Written by tests/tests/integration/web.rs. */
export interface WebEnv {
  /** The API, e.g. http://127.0.0.1:40123. */
  api: string;
  /** Port the test pages are served on (listed in AIQUOTA_CORS_ORIGINS). */
  pagePort: number;
  /** A token per scenario, each for its own user. */
  tokens: Record<string, string>;
  /** Users of those tokens. */
  users: Record<string, string>;
  /** An admin API key whose digest is in AIQUOTA_ADMIN_KEYS. */
  adminKey: string;
  /** The Razorpay stand-in's port and keys (the API is configured with them). */
  razorpay: { port: number; keyId: string; keySecret: string };
  /** Where screenshots go (docs/img). */
  screenshots: string;
}

const envPath = process.env.AIQUOTA_WEB_ENV;
if (!envPath) throw new Error("AIQUOTA_WEB_ENV is not set: run the browser tests through `make test-web`");
export const env: WebEnv = JSON.parse(readFileSync(envPath, "utf8"));
export const pageOrigin = `http://127.0.0.1:${env.pagePort}`;

const here = fileURLToPath(new URL(".", import.meta.url));

/** Bundles the test pages and serves them on `env.pagePort`. */
export async function servePages(): Promise<Server> {
  const out = mkdtempSync(join(tmpdir(), "aiquota-pages-"));
  const pages = join(here, "pages");
  const entries = readdirSync(pages).filter((f) => f.endsWith(".tsx"));
  await build({
    entryPoints: entries.map((f) => join(pages, f)),
    outdir: out,
    bundle: true,
    format: "esm",
    jsx: "automatic",
    target: "es2022",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "warning",
  });
  for (const f of readdirSync(pages).filter((f) => f.endsWith(".html"))) copyFileSync(join(pages, f), join(out, f));
  const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript" };
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    // Razorpay sends the buyer back to AIQUOTA_PUBLIC_URL + /billing/razorpay/callback: the upgrade page.
    const name = path === "/billing/razorpay/callback" ? "upgrade.html" : path.replace(/^\/+/, "");
    if (!/^[a-z0-9_-]+\.(html|js)$/.test(name)) return void res.writeHead(404).end();
    try {
      const body = readFileSync(join(out, name));
      res.writeHead(200, { "content-type": types[extname(name)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(env.pagePort, "127.0.0.1", r));
  return server;
}

/** A fresh chromium profile: one browser session. */
export async function browser(): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), "aiquota-chromium-"));
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.AIQUOTA_CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    viewport: { width: 900, height: 700 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

/** Calls the API as a server would (not through the page). */
export async function call(method: string, path: string, token: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return fetch(`${env.api}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

/** Consumes `amount` ai_requests for the token's user and checks it was allowed. */
export async function consume(token: string, amount: number): Promise<void> {
  const res = await call("POST", "/v1/quota/consume", token, { meter: "ai_requests", amount });
  if (res.status !== 200) throw new Error(`consume ${amount}: HTTP ${res.status} ${await res.text()}`);
}

/** The API's own count of answers on `route` with `status` (from /metrics). */
export async function countAtApi(route: string, status: number): Promise<number> {
  const text = await (await fetch(`${env.api}/metrics`)).text();
  let n = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("aiquota_http_requests_total{") && line.includes(`route="${route}"`) && line.includes(`status="${status}"`)) {
      n += Number(line.trim().split(/\s+/).pop());
    }
  }
  return n;
}

/** Saves a screenshot of `selector` (or the page) into docs/img. */
export async function shot(page: Page, name: string, selector?: string): Promise<void> {
  mkdirSync(env.screenshots, { recursive: true });
  const path = join(env.screenshots, `${name}.png`);
  await page.waitForTimeout(400); // let the bar's width transition (0.3 s) finish
  if (selector) await page.locator(selector).first().screenshot({ path });
  else await page.screenshot({ path, fullPage: true });
}

/** The URL of a test page for `token`. */
export function pageUrl(name: string, token: string): string {
  return `${pageOrigin}/${name}.html?api=${encodeURIComponent(env.api)}&token=${encodeURIComponent(token)}`;
}
