// The /admin dashboard, served by the API itself, signing in with an admin API key.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import type { BrowserContext, Page } from "playwright-core";

import { browser, consume, env, shot } from "./harness.js";

let ctx: BrowserContext;
before(async () => {
  ctx = await browser();
});
after(async () => {
  await ctx?.close();
});

async function act(page: Page, form: string, fields: Record<string, string>, action: string): Promise<string> {
  for (const [name, value] of Object.entries(fields)) {
    const input = page.locator(`#${form} [name=${name}]`);
    if ((await input.evaluate((e) => e.tagName)) === "SELECT") await input.selectOption(value);
    else await input.fill(value);
  }
  const before = (await page.locator("#last-audit").textContent()) ?? "";
  await page.locator(`#${form} button[type=submit]`).click();
  await page.waitForFunction(
    ([b, a]) => {
      const t = document.getElementById("last-audit")?.textContent ?? "";
      return t !== b && t.includes(`"action": "${a}"`);
    },
    [before, action],
    { timeout: 15000 },
  );
  return (await page.locator("#last-audit").textContent()) ?? "";
}

test("the admin dashboard signs in, finds a user, assigns a plan, sets a limit, resets usage, grants credits", async () => {
  const user = env.users.admin!;
  await consume(env.tokens.admin!, 3);
  const page = await ctx.newPage();
  const dialogs: string[] = [];
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    void d.accept();
  });
  await page.goto(`${env.api}/admin`);

  // A wrong credential: the API's problem detail is shown, and the dashboard stays signed out.
  await page.locator("#credential").fill("not-a-key");
  await page.locator("#signin-form button").click();
  await page.locator("#toast:not([hidden])").waitFor({ timeout: 15000 });
  assert.match((await page.locator("#toast").textContent()) ?? "", /malformed token/);
  assert.equal(await page.locator("#app").isHidden(), true);

  await page.locator("#credential").fill(env.adminKey);
  await page.locator("#signin-form button").click();
  await page.locator("#app:not([hidden])").waitFor({ timeout: 15000 });
  assert.ok(Number(await page.locator("#stat-total").textContent()) >= 1);
  assert.ok(Number(await page.locator("#stat-requests").textContent()) >= 1);
  await page.locator(`#top-users a[data-user="${user}"]`).waitFor();
  await page.locator("#chart-days svg rect").first().waitFor({ state: "attached" });
  await shot(page, "admin-analytics");

  await page.locator(`#top-users a[data-user="${user}"]`).click();
  await page.locator("#user:not([hidden])").waitFor();
  const day = page.locator('#user-windows tr[data-meter=ai_requests][data-period=day] td');
  assert.equal(await day.nth(2).textContent(), "3");
  assert.equal(await day.nth(3).textContent(), "10");

  // An error from the API is shown as its detail and writes nothing.
  await page.locator("#form-plan [name=plan]").fill("gold");
  await page.locator("#form-plan button[type=submit]").click();
  await page.locator("#toast:not([hidden])").waitFor({ timeout: 15000 });
  assert.match((await page.locator("#toast").textContent()) ?? "", /gold/);

  let audit = await act(page, "form-plan", { plan: "pro" }, "assign_plan");
  assert.match(audit, /"actor": "api-key:[0-9a-f]{12}"/);
  assert.match((await page.locator("#user-account").textContent()) ?? "", /^Plan pro,/);
  audit = await act(page, "form-limit", { meter: "ai_requests", period: "day", limit: "75" }, "set_limit");
  assert.match(audit, /"limit": 75/);
  await page.waitForFunction(() => document.querySelector('#user-windows tr[data-period=day] td:nth-child(4)')?.textContent === "75");
  await act(page, "form-reset", { meter: "" }, "reset_usage");
  assert.equal(await day.nth(2).textContent(), "0");
  await act(page, "form-grant", { meter: "ai_requests", amount: "25" }, "grant");
  assert.equal(await page.locator("#user-credits tr[data-meter=ai_requests] td").nth(1).textContent(), "25");
  assert.equal(await page.locator("#user-audit tbody tr").count(), 4);
  assert.equal(dialogs.length, 5, "every action asked for confirmation");
  await shot(page, "admin-user");
  await page.close();
});
