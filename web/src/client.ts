/**
 * The typed client. Paths, bodies and answers are typed from the API's own OpenAPI document
 * (`src/generated/openapi.ts`, checked against the document by a test), and every failure is thrown as an
 * {@link ApiError} or, for a quota denial, a {@link QuotaError}.
 */
import createFetchClient from "openapi-fetch";

import { errorFromBody, type ApiError } from "./errors.js";
import type { components, paths } from "./generated/openapi.js";
import { streamEvents } from "./sse.js";

/** The caller's plan and every window (`GET /v1/quota`, and each live event). */
export type Quota = components["schemas"]["Quota"];
/** One window of one meter. */
export type MeterStatus = components["schemas"]["MeterStatus"];
/** A decision of `POST /v1/quota/consume`. */
export type Decision = components["schemas"]["Decision"];
/** A created Razorpay payment link. */
export type PaymentLink = components["schemas"]["LinkCreated"];
/** The body of `POST /v1/payments/razorpay/verify`: the callback's query parameters. */
export type RazorpayCallback = components["schemas"]["Callback"];
/** A verified payment. */
export type PaymentVerified = components["schemas"]["Verified"];
/** The body of a consume. */
export type ConsumeRequest = components["schemas"]["ConsumeRequest"];

/** A bearer token, or null when signed out. Called before every request, so a refreshed token is used. */
export type TokenSource = () => string | null | undefined | Promise<string | null | undefined>;

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** The API's origin, e.g. `https://quota.example.com` (no trailing slash needed). */
  baseUrl: string;
  /** The user's JWT (a Supabase session's `access_token`, ...). */
  getToken: TokenSource;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

/** Options of {@link AiquotaClient.subscribe}. */
export interface SubscribeOptions {
  /** Connection opened (`true`) or lost (`false`, reconnecting). */
  onState?: (connected: boolean) => void;
  /** A failed (re)connect; 401/403 stop the stream, anything else is retried with backoff. */
  onError?: (e: ApiError) => void;
  /** First reconnect delay in ms (default 500) and the cap (default 30 000). */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

/** The client {@link createClient} returns. */
export interface AiquotaClient {
  /** The base URL without a trailing slash. */
  readonly baseUrl: string;
  /** The raw openapi-fetch client, for routes without a helper (typed the same way). */
  readonly api: ReturnType<typeof createFetchClient<paths>>;
  /** The caller's plan and windows. */
  getQuota(): Promise<Quota>;
  /** Consumes from a meter; a denial throws a QuotaError. */
  consume(body?: Partial<ConsumeRequest>, opts?: { idempotencyKey?: string }): Promise<Decision>;
  /** Live quota: called at connect and after every change; returns the function that stops it. */
  subscribe(onQuota: (q: Quota) => void, opts?: SubscribeOptions): () => void;
  /** Starts buying `product`: a Razorpay payment link to send the browser to. */
  createPaymentLink(product: string): Promise<PaymentLink>;
  /** Completes a payment from the callback's query parameters; the plan is changed when this returns. */
  verifyPayment(callback: RazorpayCallback): Promise<PaymentVerified>;
}

/** Builds a client for one API and one token source. */
export function createClient(opts: ClientOptions): AiquotaClient {
  const baseUrl = opts.baseUrl.replace(/\/+$/, "");
  const doFetch = opts.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init));
  const api = createFetchClient<paths>({ baseUrl, fetch: (req: Request) => doFetch(req) });
  api.use({
    async onRequest({ request }) {
      const token = await opts.getToken();
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  });
  const unwrap = <T>(r: { data?: T; error?: unknown; response: Response }): T => {
    if (r.response.ok && r.data !== undefined) return r.data;
    throw errorFromBody(r.response.status, r.response.headers, r.error, r.response.statusText);
  };
  return {
    baseUrl,
    api,
    async getQuota() {
      return unwrap(await api.GET("/v1/quota"));
    },
    async consume(body = {}, o = {}) {
      const params = o.idempotencyKey ? { header: { "Idempotency-Key": o.idempotencyKey } } : {};
      return unwrap(await api.POST("/v1/quota/consume", { body: body as ConsumeRequest, params }));
    },
    subscribe(onQuota, so = {}) {
      return streamEvents({
        url: `${baseUrl}/v1/quota/events`,
        fetch: doFetch,
        initialDelayMs: so.initialDelayMs,
        maxDelayMs: so.maxDelayMs,
        headers: async (): Promise<Record<string, string>> => {
          const token = await opts.getToken();
          return token ? { Authorization: `Bearer ${token}` } : {};
        },
        onMessage: (m) => {
          if (m.event !== "quota") return;
          try {
            onQuota(JSON.parse(m.data) as Quota);
          } catch {
            // A malformed event is skipped; the next one carries the whole quota again.
          }
        },
        onState: (c) => so.onState?.(c),
        onHttpError: async (res) => {
          let body: unknown;
          try {
            body = await res.clone().json();
          } catch {
            body = undefined;
          }
          so.onError?.(errorFromBody(res.status, res.headers, body, res.statusText));
          return res.status !== 401 && res.status !== 403;
        },
      });
    },
    async createPaymentLink(product) {
      return unwrap(await api.POST("/v1/payments/razorpay/links", { body: { product } }));
    },
    async verifyPayment(callback) {
      return unwrap(await api.POST("/v1/payments/razorpay/verify", { body: callback }));
    },
  };
}
