/** Formatting shared by the React components and the custom element, so both read the same. */

/**
 * A duration the way the extension writes it in its reasons ("Resets in 3h 45m"): days and hours, hours
 * and minutes, minutes, or seconds.
 */
export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3_600);
  const m = Math.floor((s % 3_600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m`;
  return `${s}s`;
}

/** "Resets in 3h 45m" for a window ending at `resetsAt`, seen at `now`. */
export function resetsIn(resetsAt: string | Date, now: number = Date.now()): string {
  const at = typeof resetsAt === "string" ? Date.parse(resetsAt) : resetsAt.getTime();
  return `Resets in ${humanDuration(Math.ceil((at - now) / 1000))}`;
}

/** The four quota statuses, from the API; thresholds are the extension's (60 % warning, 90 % critical). */
export type QuotaStatus = "normal" | "warning" | "critical" | "exceeded";

/** The status the API reported, or one derived from the numbers when it reported an unknown word. */
export function statusOf(status: string, used: number, limit: number | null | undefined): QuotaStatus {
  if (status === "normal" || status === "warning" || status === "critical" || status === "exceeded") return status;
  if (limit == null) return "normal";
  if (used >= limit) return "exceeded";
  const f = limit === 0 ? 1 : used / limit;
  return f >= 0.9 ? "critical" : f >= 0.6 ? "warning" : "normal";
}

/** "3 of 10 ai_requests used today" style text for a window. */
export function usageText(used: number, limit: number, meter: string, period: string): string {
  const when: Record<string, string> = { hour: "this hour", day: "today", week: "this week", month: "this month" };
  return `${used.toLocaleString("en")} of ${limit.toLocaleString("en")} ${meter} used ${when[period] ?? `this ${period}`}`;
}
