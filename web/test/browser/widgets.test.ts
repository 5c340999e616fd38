// The widgets in a real browser against the real API and database.
import assert from "node:assert/strict";
import type { Server } from "node:http";
import { after, before, test } from "node:test";

import type { BrowserContext, Page } from "playwright-core";

// @ts-expect-error: a plain ES module without declarations
import { startStandin } from "../../scripts/razorpay-standin.mjs";
import { browser, call, consume, countAtApi, env, pageUrl, servePages, shot } from "./harness.js";

let server: Server;
let ctx: BrowserContext;

before(async () => {
  server = await servePages();
  ctx = await browser();
});
after(async () => {
  await ctx?.close();
  await new Promise((r) => server?.close(r));
});

const COLORS = {
  normal: "rgb(22, 163, 74)",
  warning: "rgb(217, 119, 6)",
  critical: "rgb(220, 38, 38)",
  exceeded: "rgb(127, 29, 29)",
};

/** Minutes in "Resets in 3h 45m" or "Resets in 15m". */
function minutesLeft(text: string): number {
  const m = text.match(/(?:(\d+)h )?(\d+)m/);
  return m ? Number(m[1] ?? 0) * 60 + Number(m[2]) : 0; // "Resets in 45s": under a minute
}

async function expectMeter(page: Page, used: number, limit: number, status: keyof typeof COLORS): Promise<void> {
  const text = `${used} of ${limit} ai_requests used today`;
  const react = page.locator("#react [data-aiquota-meter]");
  await react.locator("[data-aiquota-text]", { hasText: text }).waitFor({ timeout: 15000 });
  assert.equal(await react.getAttribute("data-status"), status);
  const fill = react.locator("[data-aiquota-fill]");
  assert.equal(await fill.evaluate((e) => getComputedStyle(e).backgroundColor), COLORS[status]);
  const width = await fill.evaluate((e) => (e as HTMLElement).style.width);
  assert.equal(width, `${Math.min(100, (used / limit) * 100)}%`);
  assert.match((await react.locator("[data-aiquota-resets]").textContent()) ?? "", /^Resets in (\d+h \d+m|\d+m|\d+s)$/);
  // The custom element shows the same, inside its shadow root (playwright's locators pierce it).
  const el = page.locator("aiquota-meter");
  await el.locator("[part=text]", { hasText: text }).waitFor({ timeout: 15000 });
  assert.equal(await el.getAttribute("status"), status);
  assert.equal(await el.locator("[part=fill]").evaluate((e) => getComputedStyle(e).backgroundColor), COLORS[status]);
}

test("the meter shows the right numbers and colour at 0, 60, 90 and 100 %, live, and counts down", async () => {
  const token = env.tokens.meter!;
  const page = await ctx.newPage();
  await page.clock.install();
  await page.goto(pageUrl("meter", token));
  await expectMeter(page, 0, 10, "normal");
  await page.locator("[data-testid=gated]").waitFor();
  await shot(page, "meter-0", "#react");
  await consume(token, 6);
  await expectMeter(page, 6, 10, "warning");
  await shot(page, "meter-60", "#react");
  await consume(token, 3);
  await expectMeter(page, 9, 10, "critical");
  await shot(page, "meter-90", "#react");
  await consume(token, 1);
  await expectMeter(page, 10, 10, "exceeded");
  // "Resets in" counts down by itself: minutes later (on the page's clock) it says that many minutes less.
  // (Within two minutes of the window's end there is nothing left to count; the check is skipped then.)
  const resets = page.locator("#react [data-aiquota-resets]");
  const before = minutesLeft((await resets.textContent()) ?? "");
  const step = Math.min(10, before - 1);
  if (step >= 1) {
    await page.clock.fastForward(step * 60_000);
    await page.waitForFunction(([b, n]) => {
      const m = (document.querySelector("#react [data-aiquota-resets]")?.textContent ?? "").match(/(?:(\d+)h )?(\d+)m/);
      return m !== null && Number(m[1] ?? 0) * 60 + Number(m[2]) <= b! - n!;
    }, [before, step], { timeout: 3000 });
  }
  // The gate now shows its fallback with the upgrade button instead of the chat.
  await page.locator("[data-aiquota-gate=exhausted] [data-aiquota-upgrade=pro_week]").waitFor({ timeout: 15000 });
  assert.equal(await page.locator("[data-testid=gated]").count(), 0);
  await shot(page, "meter-100", "#react");
  await shot(page, "element-100", "#element");
  await page.close();
});

test("an admin upgrade in another session changes the meter within a second, without a reload", async () => {
  const token = env.tokens.live!;
  await consume(token, 10);
  const page = await ctx.newPage();
  await page.goto(pageUrl("meter", token));
  await expectMeter(page, 10, 10, "exceeded");
  const navigations: string[] = [];
  page.on("framenavigated", (f) => navigations.push(f.url()));
  const t0 = Date.now();
  const res = await call("PUT", `/v1/admin/users/${env.users.live}/plan`, env.adminKey, { plan: "pro" });
  assert.equal(res.status, 200);
  await page.locator("#react [data-aiquota-text]", { hasText: "10 of 50 ai_requests used today" }).waitFor({ timeout: 1000 });
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 1000, `took ${elapsed} ms`);
  assert.deepEqual(navigations, [], "no reload");
  await expectMeter(page, 10, 50, "normal");
  await page.locator("[data-testid=gated]").waitFor();
  await shot(page, "meter-upgraded", "#react");
  await page.close();
});

test("a CopilotKit-style page with quotaFetch makes exactly one request after exhaustion and shows the reason", async () => {
  const token = env.tokens.copilot!;
  await consume(token, 10);
  const before = await countAtApi("/v1/quota/consume", 429);
  const page = await ctx.newPage();
  await page.goto(pageUrl("copilot", token));
  await page.locator("[data-aiquota-meter][data-status=exceeded]").waitFor({ timeout: 15000 });
  const send = page.locator("[data-testid=send]");
  await send.click();
  const denial = page.locator("[data-testid=denial]");
  await denial.waitFor({ timeout: 15000 });
  assert.match((await denial.textContent()) ?? "", /^Daily limit of 10 ai_requests reached\. Resets in /);
  // Each further message would be three tries by the SDK; none of them may leave the browser.
  await send.click();
  await send.click();
  await page.locator("[data-testid=log] li").nth(2).waitFor({ timeout: 15000 });
  await new Promise((r) => setTimeout(r, 300));
  const after = await countAtApi("/v1/quota/consume", 429);
  assert.equal(after - before, 1, "one denied request reached the API");
  await shot(page, "copilot-denied");
  await page.close();
});

test("the demo page (served by the API in development) shows the live meter and consumes through quotaFetch", async () => {
  const page = await ctx.newPage();
  await page.goto(`${env.api}/demo/#token=${encodeURIComponent(env.tokens.demo!)}`);
  assert.equal(new URL(page.url()).hash, "", "the token is taken out of the address bar");
  const el = page.locator("aiquota-meter");
  await el.locator("[part=text]", { hasText: "0 of 10 ai_requests used today" }).waitFor({ timeout: 15000 });
  page.on("pageerror", (e) => console.log("page error:", e.message));
  for (let i = 1; i <= 10; i++) {
    await page.locator("#send").click();
    await page.waitForFunction(() => (document.getElementById("status")?.textContent ?? "") + (document.getElementById("denial")?.textContent ?? "") !== "", undefined, { timeout: 15000 });
    assert.match((await page.locator("#status").textContent()) ?? "", /^Allowed/, (await page.locator("#denial").textContent()) ?? "");
    await el.locator("[part=text]", { hasText: `${i} of 10 ai_requests used today` }).waitFor({ timeout: 15000 });
  }
  await page.locator("#send").click();
  await page.locator("#denial", { hasText: "Daily limit of 10 ai_requests reached" }).waitFor({ timeout: 15000 });
  assert.equal(await el.getAttribute("status"), "exceeded");
  await shot(page, "demo");
  // The block quotaFetch keeps after the denial must not stop the upgrade: it goes to the checkout page.
  const standin = await startStandin(env.razorpay);
  try {
    await page.locator("#upgrade").click();
    await page.waitForURL(/127\.0\.0\.1:\d+\/pay\/plink_/, { timeout: 15000 });
  } finally {
    await standin.close();
  }
  await page.close();
});
