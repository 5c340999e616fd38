// The upgrade flow through the local Razorpay stand-in, in a real browser.
import assert from "node:assert/strict";
import type { Server } from "node:http";
import { after, before, test } from "node:test";

import type { BrowserContext } from "playwright-core";

// @ts-expect-error: a plain ES module without declarations
import { startStandin } from "../../scripts/razorpay-standin.mjs";
import { browser, consume, env, pageOrigin, pageUrl, servePages, shot } from "./harness.js";

let server: Server;
let ctx: BrowserContext;
let standin: { close(): Promise<void> };

before(async () => {
  standin = await startStandin(env.razorpay);
  server = await servePages();
  ctx = await browser();
});
after(async () => {
  await ctx?.close();
  await new Promise((r) => server?.close(r));
  await standin?.close();
});

test("the upgrade button pays through the Razorpay stand-in and ends on the new plan", async () => {
  const token = env.tokens.upgrade!;
  await consume(token, 10);
  const page = await ctx.newPage();
  await page.goto(pageUrl("upgrade", token));
  await page.locator("[data-aiquota-meter][data-status=exceeded]").waitFor({ timeout: 15000 });
  await page.locator("[data-aiquota-upgrade=pro_week]").click();
  await page.waitForURL(/127\.0\.0\.1:\d+\/pay\/plink_/, { timeout: 15000 });
  assert.equal(await page.locator("[data-testid=price]").textContent(), "499.00 INR");
  await shot(page, "razorpay-standin");
  await page.locator("[data-testid=pay]").click();
  await page.waitForURL(`${pageOrigin}/billing/razorpay/callback**`, { timeout: 15000 });
  await page.locator("[data-testid=upgraded]", { hasText: "you are on pro" }).waitFor({ timeout: 15000 });
  await page.locator("[data-aiquota-text]", { hasText: "10 of 50 ai_requests used today" }).waitFor({ timeout: 15000 });
  assert.equal(await page.locator("[data-testid=plan]").textContent(), "Plan: pro");
  await page.locator("[data-testid=gated]").waitFor();
  assert.ok(!page.url().includes("razorpay_signature"), "the callback parameters are removed from the address bar");
  await shot(page, "upgrade-done", "#react");
  await page.close();
});
