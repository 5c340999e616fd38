/**
 * `quotaFetch`: a drop-in `fetch` for CopilotKit's `fetch` option and the OpenAI SDK's. A quota denial
 * (429/403 with the `quota-exceeded` problem) is thrown as a {@link QuotaError} and is never retried: after
 * one denial every call until the denial's `retry_after_s` has passed (for ever, when it is null: only an
 * upgrade helps) throws the same error at once, without a request. SDKs that retry failed requests on their
 * own therefore cannot hammer an exhausted quota. Everything else passes through unchanged.
 */
import { errorFromResponse, isQuotaProblem, QuotaError } from "./errors.js";

/** Options of {@link createQuotaFetch}. */
export interface QuotaFetchOptions {
  /** The fetch to wrap (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** Called once per real denial (not for the calls it then refuses locally). */
  onDenied?: (e: QuotaError) => void;
  /** Called after every request that went out (allowed, denied or failed), e.g. to re-read the quota. */
  onSettled?: () => void;
  /** The clock, for tests. */
  now?: () => number;
}

/** A fetch with the no-retry rule, and a way to lift the block (after an upgrade). */
export interface QuotaFetch {
  (input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** The denial currently blocking calls, if any. */
  readonly blockedBy: QuotaError | null;
  /** Lifts the block, e.g. when the live quota shows the user was upgraded. */
  clear(): void;
  /** Sends through `f` from now on (used by {@link installQuotaFetch}). */
  useFetch(f: typeof fetch): void;
}

/** Builds a quota-aware fetch. */
export function createQuotaFetch(opts: QuotaFetchOptions = {}): QuotaFetch {
  const now = opts.now ?? Date.now;
  let blocked: QuotaError | null = null;
  let inner: typeof fetch | undefined = opts.fetch;
  let until = 0; // ms since the epoch; Infinity when the denial can never pass on this plan
  const f = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    if (blocked && now() < until) throw blocked;
    blocked = null;
    const doFetch = inner ?? globalThis.fetch.bind(globalThis);
    try {
      return await send(doFetch, input, init);
    } finally {
      opts.onSettled?.();
    }
  };
  const send = async (doFetch: typeof fetch, input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const res = await doFetch(input, init);
    if (res.status !== 429 && res.status !== 403) return res;
    const type = res.headers.get("content-type") ?? "";
    if (!type.includes("json")) return res;
    let body: unknown;
    try {
      body = await res.clone().json();
    } catch {
      return res;
    }
    if (!body || typeof body !== "object" || !isQuotaProblem(body as Record<string, unknown>)) return res;
    const err = await errorFromResponse(res);
    if (!(err instanceof QuotaError)) return res;
    blocked = err;
    until = err.retryAfterS == null ? Infinity : now() + err.retryAfterS * 1000;
    opts.onDenied?.(err);
    throw err;
  };
  return Object.defineProperties(f, {
    blockedBy: { get: () => (blocked && now() < until ? blocked : null) },
    clear: {
      value: () => {
        blocked = null;
        until = 0;
      },
    },
    useFetch: {
      value: (f: typeof fetch) => {
        inner = f;
      },
    },
  }) as QuotaFetch;
}

/** A shared quota-aware fetch over the global fetch, for the common case. */
export const quotaFetch: QuotaFetch = createQuotaFetch();

/**
 * Routes the page's own `fetch` calls to URLs under `prefix` through `qf`, for libraries that take no
 * `fetch` option (CopilotKit's provider takes a runtime URL and headers only). Other URLs are untouched.
 * Returns the function that puts the original `fetch` back.
 */
export function installQuotaFetch(qf: QuotaFetch, prefix: string): () => void {
  const original = globalThis.fetch;
  const base = typeof location !== "undefined" ? location.href : undefined;
  const target = new URL(prefix, base).href;
  const patched = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const raw = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    let url: string;
    try {
      url = new URL(raw, base).href;
    } catch {
      return original(input, init);
    }
    return url.startsWith(target) ? qf(input, init) : original(input, init);
  };
  // `qf` looks up globalThis.fetch per call; give it the original, or it would call itself.
  qf.useFetch(original);
  globalThis.fetch = patched as typeof fetch;
  return () => {
    if (globalThis.fetch === patched) globalThis.fetch = original;
  };
}
