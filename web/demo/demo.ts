// The demo page of `make run`: the custom element, consume through quotaFetch, and the Razorpay upgrade.
// The token comes in the URL fragment (never sent to a server) and stays in this tab's session storage.
import { completeUpgrade, createClient, createQuotaFetch, QuotaError, startUpgrade, ApiError } from "../src/index.js";
import "../src/element/index.js";

const KEY = "aiquota.demo.token";
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromHash) {
  sessionStorage.setItem(KEY, fromHash);
  history.replaceState(null, "", location.pathname + location.search);
}
const token = (): string | null => sessionStorage.getItem(KEY);
const $ = (id: string): HTMLElement => document.getElementById(id)!;
const say = (id: string, text: string): void => {
  $(id).textContent = text;
};

function start(): void {
  $("signin").hidden = true;
  $("app").hidden = false;
  const meter = $("meter") as HTMLElement & { getToken: () => string | null; refresh: () => Promise<void> };
  // The live stream announces status changes; re-reading after each call moves the bar at every step.
  const qf = createQuotaFetch({ onDenied: (e) => say("denial", e.reason), onSettled: () => void meter.refresh() });
  // Only the calls that spend quota go through quotaFetch: its block must not stop the upgrade itself.
  const client = createClient({ baseUrl: location.origin, getToken: token });
  const spender = createClient({ baseUrl: location.origin, getToken: token, fetch: qf });
  meter.setAttribute("base-url", location.origin);
  meter.getToken = token;
  $("send").addEventListener("click", async () => {
    try {
      const d = await spender.consume({ meter: "ai_requests", amount: 1 });
      say("denial", "");
      say("status", `Allowed: ${d.remaining ?? "unlimited"} left (${d.status}).`);
    } catch (e) {
      if (e instanceof QuotaError) {
        say("status", "");
        say("denial", `${e.reason} (quotaFetch will not send again until then, or until you upgrade)`);
      } else say("denial", e instanceof ApiError ? e.detail : String(e));
    }
  });
  $("upgrade").addEventListener("click", () => {
    startUpgrade(client, "pro_week").catch((e: unknown) => say("denial", e instanceof ApiError ? e.detail : String(e)));
  });
  completeUpgrade(client)
    .then((v) => {
      if (!v) return;
      qf.clear();
      say("status", `Payment ${v.outcome}: you are on ${v.plan} until ${v.plan_expires_at ?? "forever"}.`);
    })
    .catch((e: unknown) => say("denial", e instanceof ApiError ? e.detail : String(e)));
}

if (token()) start();
else {
  $("signin").hidden = false;
  $("signin").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, ($("token") as HTMLInputElement).value.trim());
    start();
  });
}
