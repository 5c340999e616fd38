/**
 * CopilotKit (and any SDK with a `fetch` option): `useQuotaFetch()` gives a quota-aware fetch whose denial is
 * shown to the user and never retried, and which is unblocked as soon as the live quota has room again (an
 * upgrade, a reset, a new window), so the next message goes through without a reload. After each call it
 * re-reads the quota, so meters move with every message (the live stream announces only status changes).
 *
 * CopilotKit's provider takes no `fetch`, so {@link useCopilotKitQuota} routes the page's requests to the
 * runtime URL through the quota-aware fetch while the component is mounted:
 *
 * ```tsx
 * const { denial } = useCopilotKitQuota("/api/copilotkit");
 * <CopilotKit runtimeUrl="/api/copilotkit">...</CopilotKit>
 * {denial && <p>{denial.reason}</p>}
 * ```
 */
import { useEffect, useMemo, useState } from "react";

import type { QuotaError } from "../errors.js";
import { createQuotaFetch, installQuotaFetch, type QuotaFetch } from "../quota-fetch.js";
import { useAiquota } from "./provider.js";
import { useQuota } from "./use-quota.js";

/** What {@link useQuotaFetch} returns. */
export interface UseQuotaFetch {
  /** Pass as CopilotKit's or the OpenAI SDK's `fetch`. */
  fetch: QuotaFetch;
  /** The denial blocking calls now, to show its `reason`; `null` when calls may go out. */
  denial: QuotaError | null;
}

/** A quota-aware fetch tied to the live quota of `meter`. */
export function useQuotaFetch(meter?: string, base?: typeof fetch): UseQuotaFetch {
  const [denial, setDenial] = useState<QuotaError | null>(null);
  const { store } = useAiquota();
  // Consume announces only status changes on the live stream, so re-read after each call to show every step.
  const qf = useMemo(
    () => createQuotaFetch({ fetch: base, onDenied: setDenial, onSettled: () => void store.refresh() }),
    [base, store],
  );
  const { window } = useQuota(meter);
  const roomAgain = window != null && window.status !== "exceeded" && (window.remaining ?? 1) > 0;
  useEffect(() => {
    if (roomAgain && denial) {
      qf.clear();
      setDenial(null);
    }
  }, [roomAgain, denial, qf]);
  return { fetch: qf, denial };
}

/**
 * For CopilotKit: while mounted, every request the page sends to `runtimeUrl` (and below it) goes through a
 * quota-aware fetch tied to the live quota of `meter`; returns the denial to show.
 */
export function useCopilotKitQuota(runtimeUrl: string, meter?: string): UseQuotaFetch {
  const q = useQuotaFetch(meter);
  useEffect(() => installQuotaFetch(q.fetch, runtimeUrl), [q.fetch, runtimeUrl]);
  return q;
}
