// A real HTTP server on 127.0.0.1 for the unit tests: each test answers as the aiquota API documents
// (docs/http.md) and counts what reached it.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

export interface TestServer {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

export async function serve(
  handler: (req: Seen, res: ServerResponse, n: number) => void | Promise<void>,
): Promise<TestServer> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const s: Seen = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body };
      seen.push(s);
      void handler(s, res, seen.length);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The body of a denial as the API writes it. */
export function denial(retryAfter: number | null): Record<string, unknown> {
  return {
    type: "/problems/quota-exceeded",
    title: "Quota exceeded",
    status: 429,
    detail: "Daily limit of 10 ai_requests reached. Resets in 3h 45m.",
    instance: "/v1/quota/consume",
    request_id: "req-1",
    allowed: false,
    meter: "ai_requests",
    plan: "free",
    used: 10,
    limit: 10,
    remaining: 0,
    resets_at: "2026-03-11T00:00:00Z",
    quota_status: "exceeded",
    reason: "Daily limit of 10 ai_requests reached. Resets in 3h 45m.",
    retry_after_s: retryAfter,
    period: "day",
  };
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const type = status >= 400 ? "application/problem+json" : "application/json";
  res.writeHead(status, { "content-type": type, ...headers });
  res.end(JSON.stringify(body));
}
