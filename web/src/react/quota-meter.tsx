/** `<QuotaMeter>`: a bar, "3 of 10 ai_requests used today" and a live "Resets in 3h 45m" countdown. */
import type { CSSProperties } from "react";

import { meterView } from "../view.js";
import { useNow } from "./provider.js";
import { useQuota } from "./use-quota.js";

/** Props of {@link QuotaMeter}. */
export interface QuotaMeterProps {
  /** The meter to show (default: the plan's first meter). */
  meter?: string;
  /** A heading above the bar. */
  label?: string;
  className?: string;
  style?: CSSProperties;
}

/**
 * Shows the binding window of `meter`. Colours follow the status (normal, warning from 60 %, critical from
 * 90 %, exceeded) and can be themed with `--aiquota-normal`, `--aiquota-warning`, `--aiquota-critical`,
 * `--aiquota-exceeded` and `--aiquota-track`. Renders nothing for an unlimited window.
 */
export function QuotaMeter({ meter, label, className, style }: QuotaMeterProps) {
  const q = useQuota(meter);
  const now = useNow(1000);
  if (q.error && !q.quota) {
    return <div className={className} role="alert" data-aiquota-error="">{q.error.detail}</div>;
  }
  if (!q.window) return null;
  const v = meterView(q.window, now);
  if (!v) return null;
  return (
    <div className={className} style={{ fontFamily: "var(--aiquota-font, inherit)", ...style }}
      data-aiquota-meter={q.window.meter} data-status={v.status}>
      {label ? <div style={{ fontWeight: 600, marginBottom: 4 }}>{label}</div> : null}
      <div role="progressbar" aria-valuemin={0} aria-valuemax={q.window.limit ?? 0} aria-valuenow={q.window.used}
        aria-label={v.text}
        style={{ background: "var(--aiquota-track, #e5e7eb)", borderRadius: "var(--aiquota-radius, 6px)",
          height: "var(--aiquota-height, 10px)", overflow: "hidden" }}>
        <div data-aiquota-fill="" style={{ width: `${v.percent}%`, height: "100%", background: v.color,
          transition: "width .3s ease" }} />
      </div>
      <div style={{ display: "flex", justifyContent: "space-between", gap: 8, fontSize: "0.875em", marginTop: 4 }}>
        <span data-aiquota-text="">{v.text}{v.label ? <strong style={{ color: v.color }}> · {v.label}</strong> : null}</span>
        <span data-aiquota-resets="">{v.resets}</span>
      </div>
    </div>
  );
}
