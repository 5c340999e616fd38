/**
 * What a quota meter shows for one window, computed once for the React component and the custom element so
 * both show the same numbers, words and colours.
 */
import type { MeterStatus } from "./client.js";
import { resetsIn, statusOf, usageText, type QuotaStatus } from "./format.js";

/** Default colours per status; each is overridable by a CSS custom property of the same name. */
export const STATUS_COLORS: Record<QuotaStatus, { variable: string; color: string }> = {
  normal: { variable: "--aiquota-normal", color: "#16a34a" },
  warning: { variable: "--aiquota-warning", color: "#d97706" },
  critical: { variable: "--aiquota-critical", color: "#dc2626" },
  exceeded: { variable: "--aiquota-exceeded", color: "#7f1d1d" },
};

/** A word for each status beside the numbers. */
export const STATUS_LABELS: Record<QuotaStatus, string> = {
  normal: "",
  warning: "Running low",
  critical: "Almost used up",
  exceeded: "Limit reached",
};

/** The meter of one window. */
export interface MeterView {
  status: QuotaStatus;
  /** 0 to 100, for the bar's width. */
  percent: number;
  /** "3 of 10 ai_requests used today". */
  text: string;
  /** "Resets in 3h 45m". */
  resets: string;
  /** The status word ("" for normal). */
  label: string;
  /** `var(--aiquota-warning, #d97706)`. */
  color: string;
}

/** The view of `w` at `now`, or `null` for an unlimited window (nothing is shown for it). */
export function meterView(w: MeterStatus, now: number = Date.now()): MeterView | null {
  if (w.limit == null) return null;
  const status = statusOf(w.status, w.used + w.held, w.limit);
  const raw = w.percent ?? (w.limit === 0 ? 100 : ((w.used + w.held) / w.limit) * 100);
  const c = STATUS_COLORS[status];
  return {
    status,
    percent: Math.max(0, Math.min(100, raw)),
    text: usageText(w.used, w.limit, w.meter, w.period),
    resets: resetsIn(w.resets_at, now),
    label: STATUS_LABELS[status],
    color: `var(${c.variable}, ${c.color})`,
  };
}
