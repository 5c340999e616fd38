import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, errorFromBody, errorFromResponse, QuotaError } from "../../src/errors.js";
import { denial } from "./server.js";

const h = (o: Record<string, string> = {}) => new Headers(o);

test("a denial becomes a QuotaError with reason, resets_at, retry_after_s and status", () => {
  const e = errorFromBody(429, h({ "retry-after": "13500" }), denial(13500));
  assert.ok(e instanceof QuotaError);
  assert.equal(e.status, 429);
  assert.equal(e.reason, "Daily limit of 10 ai_requests reached. Resets in 3h 45m.");
  assert.equal(e.resetsAt?.toISOString(), "2026-03-11T00:00:00.000Z");
  assert.equal(e.retryAfterS, 13500);
  assert.equal(e.quotaStatus, "exceeded");
  assert.equal(e.meter, "ai_requests");
  assert.equal(e.limit, 10);
  assert.equal(e.remaining, 0);
  assert.equal(e.requestId, "req-1");
  assert.equal(e.message, e.reason);
});

test("a denial that can never pass has retryAfterS null", () => {
  const e = errorFromBody(403, h(), denial(null));
  assert.ok(e instanceof QuotaError);
  assert.equal(e.status, 403);
  assert.equal(e.retryAfterS, null);
});

test("the IANA problem type is recognised too", () => {
  const body = { ...denial(5), type: "https://iana.org/assignments/http-problem-types#quota-exceeded" };
  assert.ok(errorFromBody(429, h(), body) instanceof QuotaError);
});

test("Retry-After is used when the body has no retry_after_s", () => {
  const body = denial(null);
  delete body.retry_after_s;
  const e = errorFromBody(429, h({ "retry-after": "7" }), body) as QuotaError;
  assert.equal(e.retryAfterS, 7);
});

test("other problems are ApiErrors carrying the detail", () => {
  const e = errorFromBody(404, h(), { type: "/problems/not-found", title: "Not found", status: 404, detail: "Unknown plan 'gold'" });
  assert.ok(e instanceof ApiError && !(e instanceof QuotaError));
  assert.equal(e.detail, "Unknown plan 'gold'");
  assert.equal(e.type, "/problems/not-found");
});

test("a 429 that is not a quota problem (an upstream rate limit) is no QuotaError", () => {
  const e = errorFromBody(429, h(), { error: { message: "Rate limit reached for gpt-4o" } });
  assert.ok(!(e instanceof QuotaError));
  assert.equal(e.status, 429);
});

test("a body that is not JSON still gives the status text and the request id header", async () => {
  const res = new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway", headers: { "x-request-id": "abc" } });
  const e = await errorFromResponse(res);
  assert.equal(e.detail, "Bad Gateway");
  assert.equal(e.requestId, "abc");
});
