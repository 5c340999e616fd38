// The test pages read where the API is and whose token to use from their query string, and keep them for
// the tab, so the Razorpay callback (which carries only Razorpay's parameters) finds them again.
const q = new URLSearchParams(location.search);
for (const k of ["api", "token"]) {
  const v = q.get(k);
  if (v) sessionStorage.setItem(`aiquota.test.${k}`, v);
}
export const api = sessionStorage.getItem("aiquota.test.api") ?? "";
export const token = sessionStorage.getItem("aiquota.test.token") ?? "";
export const meter = q.get("meter") ?? "ai_requests";
