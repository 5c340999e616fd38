import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay, SseParser, streamEvents, type SseMessage } from "../../src/sse.js";
import { serve } from "./server.js";

function parse(chunks: string[]): { msgs: SseMessage[]; p: SseParser } {
  const msgs: SseMessage[] = [];
  const p = new SseParser((m) => msgs.push(m));
  for (const c of chunks) p.push(c);
  return { msgs, p };
}

test("events split across chunks at every position parse the same", () => {
  const text = "event: quota\ndata: {\"a\":1}\n\n: keep-alive\n\nevent: quota\ndata: line1\ndata: line2\nid: 7\n\n";
  for (let i = 0; i <= text.length; i++) {
    const { msgs } = parse([text.slice(0, i), text.slice(i)]);
    assert.deepEqual(msgs, [
      { event: "quota", data: "{\"a\":1}", id: undefined },
      { event: "quota", data: "line1\nline2", id: "7" },
    ], `split at ${i}`);
  }
});

test("CRLF and CR line ends, also with the CR and LF in different chunks", () => {
  assert.deepEqual(parse(["data: a\r\n\r\ndata: b\r\r"]).msgs.map((m) => m.data), ["a", "b"]);
  assert.deepEqual(parse(["data: a\r", "\n\r", "\n"]).msgs.map((m) => m.data), ["a"]);
});

test("fields: no space after the colon, a field without a colon, retry, default event name", () => {
  const { msgs, p } = parse(["data:x\ndata\nretry: 2500\nretry: soon\nfoo: bar\n\n"]);
  assert.deepEqual(msgs, [{ event: "message", data: "x\n", id: undefined }]);
  assert.equal(p.retryMs, 2500);
});

test("an event with no data is not dispatched and does not leak its name", () => {
  const { msgs } = parse(["event: quota\n\ndata: y\n\n"]);
  assert.deepEqual(msgs, [{ event: "message", data: "y", id: undefined }]);
});

test("backoff doubles, is capped and jittered down by at most 20 %", () => {
  assert.equal(backoffDelay(0, 500, 30_000, () => 1), 500);
  assert.equal(backoffDelay(3, 500, 30_000, () => 1), 4000);
  assert.equal(backoffDelay(20, 500, 30_000, () => 1), 30_000);
  assert.equal(backoffDelay(0, 500, 30_000, () => 0), 400);
});

test("streamEvents sends the token, reconnects after the server drops it, and stops on 401", async () => {
  const srv = await serve((_req, res, n) => {
    if (n === 1) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end("event: quota\ndata: one\n\n"); // then the connection ends
    } else if (n === 2) {
      res.writeHead(503).end();
    } else if (n === 3) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("event: quota\ndata: two\n\n");
      // stays open
    } else {
      res.writeHead(401).end();
    }
  });
  const got: string[] = [];
  const states: boolean[] = [];
  let tokenCalls = 0;
  const stop = streamEvents({
    url: `${srv.url}/v1/quota/events`,
    headers: () => ({ Authorization: `Bearer t${++tokenCalls}` }),
    onMessage: (m) => got.push(m.data),
    onState: (c) => states.push(c),
    initialDelayMs: 20,
    maxDelayMs: 50,
  });
  const deadline = Date.now() + 5000;
  while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  stop();
  await srv.close();
  assert.deepEqual(got, ["one", "two"]);
  assert.equal(srv.seen.length, 3, "one reconnect after the drop, one after the 503");
  assert.deepEqual(srv.seen.map((s) => s.headers.authorization), ["Bearer t1", "Bearer t2", "Bearer t3"]);
  assert.equal(srv.seen[0]?.headers.accept, "text/event-stream");
  assert.ok(states.includes(true) && states.includes(false));
});

test("streamEvents does not retry a 401", async () => {
  const srv = await serve((_req, res) => {
    res.writeHead(401, { "content-type": "application/problem+json" }).end("{\"detail\":\"token expired\"}");
  });
  const stop = streamEvents({ url: srv.url, headers: () => ({}), onMessage: () => undefined, initialDelayMs: 10 });
  await new Promise((r) => setTimeout(r, 300));
  stop();
  await srv.close();
  assert.equal(srv.seen.length, 1);
});
