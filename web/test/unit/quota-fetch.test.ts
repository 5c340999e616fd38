import assert from "node:assert/strict";
import { test } from "node:test";

import { QuotaError } from "../../src/errors.js";
import { createQuotaFetch, installQuotaFetch } from "../../src/quota-fetch.js";
import { denial, json, serve } from "./server.js";

test("a quota denial throws a QuotaError once and is never retried while it holds", async () => {
  const srv = await serve((_req, res) => json(res, 429, denial(60), { "retry-after": "60" }));
  let clock = 1_000_000;
  const denied: QuotaError[] = [];
  let settled = 0;
  const qf = createQuotaFetch({ now: () => clock, onDenied: (e) => denied.push(e), onSettled: () => settled++ });
  await assert.rejects(qf(`${srv.url}/api/copilotkit`, { method: "POST" }), (e: unknown) => {
    assert.ok(e instanceof QuotaError);
    assert.equal(e.reason, "Daily limit of 10 ai_requests reached. Resets in 3h 45m.");
    return true;
  });
  // What an SDK's own retry loop would do: three more tries within the minute.
  for (let i = 0; i < 3; i++) {
    clock += 10_000;
    await assert.rejects(qf(`${srv.url}/api/copilotkit`, { method: "POST" }), QuotaError);
  }
  assert.equal(srv.seen.length, 1, "only the first call reached the server");
  assert.equal(denied.length, 1);
  assert.ok(qf.blockedBy instanceof QuotaError);
  // Once retry_after_s has passed, the next call goes out again.
  clock += 30_001;
  await assert.rejects(qf(`${srv.url}/x`), QuotaError);
  assert.equal(srv.seen.length, 2);
  assert.equal(settled, 2, "onSettled runs once per request that went out, not for the local refusals");
  await srv.close();
});

test("a denial that can never pass blocks until clear()", async () => {
  let deny = true;
  const srv = await serve((_req, res) => (deny ? json(res, 403, { ...denial(null), status: 403 }) : json(res, 200, { ok: true })));
  let clock = 0;
  const qf = createQuotaFetch({ now: () => clock });
  await assert.rejects(qf(srv.url), QuotaError);
  clock += 365 * 86_400_000;
  await assert.rejects(qf(srv.url), QuotaError);
  assert.equal(srv.seen.length, 1);
  deny = false;
  qf.clear();
  const res = await qf(srv.url);
  assert.equal(res.status, 200);
  assert.equal(srv.seen.length, 2);
  await srv.close();
});

test("other responses, an upstream 429 included, pass through untouched and unblocked", async () => {
  const srv = await serve((req, res) => {
    if (req.url === "/upstream") json(res, 429, { error: { message: "slow down" } });
    else json(res, 200, { hello: "world" });
  });
  const qf = createQuotaFetch();
  const up = await qf(`${srv.url}/upstream`);
  assert.equal(up.status, 429);
  assert.deepEqual(await up.json(), { error: { message: "slow down" } });
  const ok = await qf(`${srv.url}/ok`, { method: "POST", body: "x", headers: { "x-test": "1" } });
  assert.deepEqual(await ok.json(), { hello: "world" });
  assert.equal(srv.seen[1]?.body, "x");
  assert.equal(srv.seen[1]?.headers["x-test"], "1");
  assert.equal(qf.blockedBy, null);
  await srv.close();
});

test("installQuotaFetch routes only the runtime's URLs through the quota fetch, and uninstalls", async () => {
  const srv = await serve((req, res) => (req.url?.startsWith("/api/copilotkit") ? json(res, 429, denial(60)) : json(res, 200, { ok: 1 })));
  const original = globalThis.fetch;
  const qf = createQuotaFetch();
  const uninstall = installQuotaFetch(qf, `${srv.url}/api/copilotkit`);
  try {
    await assert.rejects(fetch(`${srv.url}/api/copilotkit/agent/run`, { method: "POST" }), QuotaError);
    await assert.rejects(fetch(`${srv.url}/api/copilotkit`), QuotaError);
    assert.equal((await fetch(`${srv.url}/other`)).status, 200, "other URLs are untouched");
    assert.equal(srv.seen.length, 2, "the second runtime call was refused locally");
  } finally {
    uninstall();
  }
  assert.equal(globalThis.fetch, original);
  await srv.close();
});
