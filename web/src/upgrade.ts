/**
 * The upgrade flow through Razorpay Payment Links: {@link startUpgrade} creates a link through the API and
 * sends the browser to it; Razorpay sends the buyer back to `AIQUOTA_PUBLIC_URL` with the signed callback
 * parameters, where {@link completeUpgrade} has the API verify them (signature, and the link's state at
 * Razorpay) and apply the plan. The live quota then shows the new plan at once: there is no cache to evict.
 */
import type { AiquotaClient, PaymentVerified, RazorpayCallback } from "./client.js";

const FIELDS = [
  "razorpay_payment_id",
  "razorpay_payment_link_id",
  "razorpay_payment_link_reference_id",
  "razorpay_payment_link_status",
  "razorpay_signature",
] as const;

/** The callback parameters of `url`, or `null` when it is not a Razorpay callback. */
export function callbackFromUrl(url: string | URL): RazorpayCallback | null {
  const params = new URL(url).searchParams;
  const out: Record<string, string> = {};
  for (const f of FIELDS) {
    const v = params.get(f);
    if (!v) return null;
    out[f] = v;
  }
  return out as unknown as RazorpayCallback;
}

/** Creates a payment link for `product` and goes to it (`navigate` defaults to `location.assign`). */
export async function startUpgrade(
  client: AiquotaClient,
  product: string,
  navigate: (url: string) => void = (u) => window.location.assign(u),
): Promise<void> {
  const link = await client.createPaymentLink(product);
  navigate(link.short_url);
}

/**
 * On the callback page: verifies the payment and removes the parameters from the address bar. Returns
 * `null` when the page is not a callback; throws the API's error (bad signature, not paid, ...) otherwise.
 */
export async function completeUpgrade(
  client: AiquotaClient,
  url: string = window.location.href,
): Promise<PaymentVerified | null> {
  const cb = callbackFromUrl(url);
  if (!cb) return null;
  const verified = await client.verifyPayment(cb);
  if (typeof window !== "undefined" && window.history) {
    const clean = new URL(url);
    for (const f of FIELDS) clean.searchParams.delete(f);
    window.history.replaceState(null, "", clean.toString());
  }
  return verified;
}
