/** `useQuota(meter?)`: the live quota on `useSyncExternalStore`, so every component sees the same snapshot. */
import { useSyncExternalStore } from "react";

import type { MeterStatus, Quota } from "../client.js";
import type { ApiError } from "../errors.js";
import { bindingWindow } from "../store.js";
import { useAiquota } from "./provider.js";

/** What {@link useQuota} returns. */
export interface UseQuota {
  /** The whole quota, `null` until the first read. */
  quota: Quota | null;
  /** The window of `meter` that binds first, `null` while loading or when the meter is unlimited. */
  window: MeterStatus | null;
  /** `true` when that window is used up. */
  exhausted: boolean;
  /** The last error (a sign-in problem, the API unreachable). */
  error: ApiError | null;
  /** `true` until the first read finished. */
  loading: boolean;
  /** Whether live updates are connected. */
  live: boolean;
  /** Re-reads now. */
  refresh: () => Promise<void>;
}

/** The caller's live quota, and of `meter` (default: the plan's first meter) the binding window. */
export function useQuota(meter?: string): UseQuota {
  const { store } = useAiquota();
  const snap = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  const window = bindingWindow(snap.quota, meter);
  return {
    quota: snap.quota,
    window,
    exhausted: window != null && (window.status === "exceeded" || (window.remaining ?? 1) <= 0),
    error: snap.error,
    loading: snap.quota == null && snap.error == null,
    live: snap.live,
    refresh: store.refresh,
  };
}
