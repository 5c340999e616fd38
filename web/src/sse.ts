/**
 * Server-Sent Events over `fetch`. The browser's `EventSource` cannot send an `Authorization` header, and the
 * API authenticates every stream by the bearer token, so the kit parses `text/event-stream` itself (the
 * WHATWG event-stream grammar) and reconnects with exponential backoff and jitter.
 */

/** One dispatched event. */
export interface SseMessage {
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * An incremental `text/event-stream` parser: feed it chunks as they arrive, in any split, and it calls
 * `onMessage` for each complete event. Handles LF, CRLF and CR line ends, comments, multi-line `data`,
 * `id` and `retry`.
 */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private sawCr = false;
  /** The last `id` seen (kept across events, as the spec says). */
  lastEventId: string | undefined;
  /** The last valid `retry` in milliseconds, if the server sent one. */
  retryMs: number | undefined;

  constructor(private readonly onMessage: (m: SseMessage) => void) {}

  /** Parses a chunk of text. */
  push(chunk: string): void {
    let text = chunk;
    // A CR at the end of the previous chunk already ended a line: drop the LF of its CRLF.
    if (this.sawCr && text.startsWith("\n")) text = text.slice(1);
    this.sawCr = false;
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== "\n" && c !== "\r") continue;
      this.line(this.buffer.slice(start, i));
      if (c === "\r") {
        if (i + 1 === this.buffer.length) this.sawCr = true;
        else if (this.buffer[i + 1] === "\n") i++;
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
  }

  private line(line: string): void {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.data.push(value);
        break;
      case "event":
        this.event = value;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break;
    }
  }

  private dispatch(): void {
    if (this.data.length === 0) {
      this.event = "";
      return;
    }
    const m: SseMessage = { event: this.event || "message", data: this.data.join("\n"), id: this.lastEventId };
    this.data = [];
    this.event = "";
    this.onMessage(m);
  }
}

/** Reconnect delays: doubling from `initialMs` to `maxMs`, each with up to 20 % random jitter. */
export function backoffDelay(attempt: number, initialMs = 500, maxMs = 30_000, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt));
  return Math.round(base * (0.8 + 0.2 * random()));
}

/** Options of {@link streamEvents}. */
export interface StreamOptions {
  /** The full URL of the stream. */
  url: string;
  /** Headers for each (re)connect, e.g. a fresh bearer token. */
  headers: () => Promise<Record<string, string>> | Record<string, string>;
  /** Called with each event. */
  onMessage: (m: SseMessage) => void;
  /** Called when a connection opens (`true`) or drops (`false`). */
  onState?: (connected: boolean, error?: unknown) => void;
  /**
   * Called with a failed response; return `false` to stop reconnecting (the default stops on 401 and 403,
   * which a retry cannot fix).
   */
  onHttpError?: (res: Response) => boolean | Promise<boolean>;
  /** The fetch to use (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** First reconnect delay (default 500 ms) and the cap (default 30 s). */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * Keeps a stream open until the returned function is called: connects, parses, and after any end or error
 * reconnects with backoff (reset after a connection that delivered an event).
 */
export function streamEvents(opts: StreamOptions): () => void {
  const ctrl = new AbortController();
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  let attempt = 0;
  const run = async (): Promise<void> => {
    while (!ctrl.signal.aborted) {
      let delivered = false;
      let stop = false;
      let retryMs: number | undefined;
      try {
        const headers = { Accept: "text/event-stream", ...(await opts.headers()) };
        const res = await doFetch(opts.url, { headers, signal: ctrl.signal, cache: "no-store" });
        if (!res.ok || !res.body) {
          const keepGoing = opts.onHttpError ? await opts.onHttpError(res) : res.status !== 401 && res.status !== 403;
          await res.body?.cancel().catch(() => undefined);
          if (!keepGoing) stop = true;
          throw new Error(`event stream answered HTTP ${res.status}`);
        }
        opts.onState?.(true);
        const parser = new SseParser((m) => {
          delivered = true;
          opts.onMessage(m);
        });
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.push(value);
        }
        retryMs = parser.retryMs;
        opts.onState?.(false);
      } catch (e) {
        if (ctrl.signal.aborted) return;
        opts.onState?.(false, e);
      }
      if (stop || ctrl.signal.aborted) return;
      if (delivered) attempt = 0;
      const wait = retryMs ?? backoffDelay(attempt++, opts.initialDelayMs, opts.maxDelayMs);
      await sleep(wait, ctrl.signal);
    }
  };
  void run();
  return () => ctrl.abort();
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
