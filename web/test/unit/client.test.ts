import assert from "node:assert/strict";
import { test } from "node:test";

import { createClient } from "../../src/client.js";
import { ApiError, QuotaError } from "../../src/errors.js";
import { createQuotaStore } from "../../src/store.js";
import { callbackFromUrl } from "../../src/upgrade.js";
import { humanDuration, resetsIn } from "../../src/format.js";
import { meterView } from "../../src/view.js";
import { denial, json, serve } from "./server.js";

const quota = (used: number) => ({
  user: "alice",
  plan: "free",
  meters: [
    { meter: "ai_requests", period: "day", used, limit: 10, remaining: 10 - used, percent: used * 10, status: used >= 10 ? "exceeded" : "normal", resets_at: "2030-01-01T00:00:00Z", held: 0 },
    { meter: "ai_tokens", period: "month", used: 0, limit: null, remaining: null, percent: null, status: "normal", resets_at: "2030-02-01T00:00:00Z", held: 0 },
  ],
});

test("getQuota sends a fresh bearer token each time and returns the body", async () => {
  const srv = await serve((_req, res) => json(res, 200, quota(3)));
  let n = 0;
  const c = createClient({ baseUrl: `${srv.url}/`, getToken: () => `tok${++n}` });
  const q = await c.getQuota();
  await c.getQuota();
  assert.equal(q.meters[0]?.used, 3);
  assert.equal(srv.seen[0]?.url, "/v1/quota");
  assert.deepEqual(srv.seen.map((s) => s.headers.authorization), ["Bearer tok1", "Bearer tok2"]);
  await srv.close();
});

test("consume posts the body and the idempotency key; a denial throws QuotaError", async () => {
  const srv = await serve((_req, res, n) =>
    n === 1 ? json(res, 200, { ...denial(null), allowed: true, reason: null, status: "normal" }) : json(res, 429, denial(120)));
  const c = createClient({ baseUrl: srv.url, getToken: () => "t" });
  await c.consume({ meter: "ai_requests", amount: 2 }, { idempotencyKey: "k-1" });
  assert.deepEqual(JSON.parse(srv.seen[0]?.body ?? ""), { meter: "ai_requests", amount: 2 });
  assert.equal(srv.seen[0]?.headers["idempotency-key"], "k-1");
  assert.equal(srv.seen[0]?.headers["content-type"], "application/json");
  await assert.rejects(c.consume(), (e: unknown) => e instanceof QuotaError && e.retryAfterS === 120);
  await srv.close();
});

test("an error problem becomes an ApiError with the detail", async () => {
  const srv = await serve((_req, res) => json(res, 401, { type: "/problems/unauthorized", title: "Unauthorized", status: 401, detail: "token expired" }));
  const c = createClient({ baseUrl: srv.url, getToken: () => null });
  await assert.rejects(c.getQuota(), (e: unknown) => e instanceof ApiError && e.status === 401 && e.detail === "token expired");
  assert.equal(srv.seen[0]?.headers.authorization, undefined, "no token, no header");
  await srv.close();
});

test("the store reads, then follows the event stream", async () => {
  const srv = await serve((req, res) => {
    if (req.url === "/v1/quota") return json(res, 200, quota(1));
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(`event: quota\ndata: ${JSON.stringify(quota(10))}\n\n`);
  });
  const store = createQuotaStore(createClient({ baseUrl: srv.url, getToken: () => "t" }));
  const seen: number[] = [];
  const unsub = store.subscribe(() => {
    const u = store.getSnapshot().quota?.meters[0]?.used;
    if (u !== undefined && seen.at(-1) !== u) seen.push(u);
  });
  const deadline = Date.now() + 3000;
  while (!seen.includes(10) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  unsub();
  await srv.close();
  assert.ok(seen.includes(10), `saw ${seen.join(",")}`);
  assert.equal(store.getSnapshot().quota, null, "the last listener leaving stops and clears the store");
});

test("durations and meter views read as the extension writes them", () => {
  assert.equal(humanDuration(13_500), "3h 45m");
  assert.equal(humanDuration(900), "15m");
  assert.equal(humanDuration(10), "10s");
  assert.equal(humanDuration(90_000), "1d 1h");
  assert.equal(resetsIn("2026-03-11T00:00:00Z", Date.parse("2026-03-10T20:15:00Z")), "Resets in 3h 45m");
  const w = quota(6).meters[0]!;
  const v = meterView({ ...w, status: "warning" }, Date.parse("2029-12-31T20:15:00Z"));
  assert.equal(v?.text, "6 of 10 ai_requests used today");
  assert.equal(v?.status, "warning");
  assert.equal(v?.resets, "Resets in 3h 45m");
  assert.equal(meterView(quota(0).meters[1]!), null, "unlimited shows nothing");
});

test("callbackFromUrl needs all five Razorpay parameters", () => {
  const full = "https://app.test/?razorpay_payment_id=pay_1&razorpay_payment_link_id=plink_1&razorpay_payment_link_reference_id=aq_1&razorpay_payment_link_status=paid&razorpay_signature=abc";
  assert.equal(callbackFromUrl(full)?.razorpay_payment_id, "pay_1");
  assert.equal(callbackFromUrl("https://app.test/?razorpay_payment_id=pay_1"), null);
});
