/** `aiquota`: the framework-free part of the kit. */
export { createClient } from "./client.js";
export type {
  AiquotaClient,
  ClientOptions,
  ConsumeRequest,
  Decision,
  MeterStatus,
  PaymentLink,
  PaymentVerified,
  Quota,
  RazorpayCallback,
  SubscribeOptions,
  TokenSource,
} from "./client.js";
export { ApiError, QuotaError, errorFromBody, errorFromResponse, isQuotaProblem } from "./errors.js";
export type { ProblemBody } from "./errors.js";
export { SseParser, backoffDelay, streamEvents } from "./sse.js";
export type { SseMessage, StreamOptions } from "./sse.js";
export { createQuotaFetch, installQuotaFetch, quotaFetch } from "./quota-fetch.js";
export type { QuotaFetch, QuotaFetchOptions } from "./quota-fetch.js";
export { bindingWindow, createQuotaStore } from "./store.js";
export type { QuotaSnapshot, QuotaStore } from "./store.js";
export { humanDuration, resetsIn, statusOf, usageText } from "./format.js";
export type { QuotaStatus } from "./format.js";
export { STATUS_COLORS, STATUS_LABELS, meterView } from "./view.js";
export type { MeterView } from "./view.js";
export { callbackFromUrl, completeUpgrade, startUpgrade } from "./upgrade.js";
