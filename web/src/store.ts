/**
 * A framework-free store of one user's live quota: the first listener starts an initial read and the event
 * stream, the last one stops them. Snapshots are immutable and replaced on every change, which is what
 * React's `useSyncExternalStore` and the custom element both need.
 */
import type { AiquotaClient, MeterStatus, Quota } from "./client.js";
import { ApiError } from "./errors.js";

/** What the store holds. */
export interface QuotaSnapshot {
  /** The quota, once read. */
  quota: Quota | null;
  /** The last error (a failed read, or the stream refused), cleared by the next good read. */
  error: ApiError | null;
  /** Whether the live stream is connected. */
  live: boolean;
}

/** The store {@link createQuotaStore} returns. */
export interface QuotaStore {
  /** Registers a listener; returns the function that removes it. */
  subscribe(listener: () => void): () => void;
  /** The current snapshot (the same object until something changes). */
  getSnapshot(): QuotaSnapshot;
  /** Reads the quota now (e.g. after a consume); the stream does this by itself after every change. */
  refresh(): Promise<void>;
}

const EMPTY: QuotaSnapshot = Object.freeze({ quota: null, error: null, live: false });

/** A store over `client`. */
export function createQuotaStore(client: AiquotaClient): QuotaStore {
  let snap: QuotaSnapshot = EMPTY;
  const listeners = new Set<() => void>();
  let stop: (() => void) | null = null;
  const set = (patch: Partial<QuotaSnapshot>): void => {
    snap = Object.freeze({ ...snap, ...patch });
    for (const l of [...listeners]) l();
  };
  const refresh = async (): Promise<void> => {
    try {
      set({ quota: await client.getQuota(), error: null });
    } catch (e) {
      set({ error: e instanceof ApiError ? e : new ApiError(0, { detail: String(e) }) });
    }
  };
  const start = (): void => {
    void refresh();
    stop = client.subscribe((quota) => set({ quota, error: null }), {
      onState: (live) => set({ live }),
      onError: (error) => set({ error }),
    });
  };
  return {
    subscribe(listener) {
      listeners.add(listener);
      if (listeners.size === 1) start();
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0 && stop) {
          stop();
          stop = null;
          snap = EMPTY;
        }
      };
    },
    getSnapshot: () => snap,
    refresh,
  };
}

/**
 * The window a meter UI shows: of `meter` (default the first meter), the limited window with the highest
 * percentage (the one that binds first); `null` when the meter has only unlimited windows or none.
 */
export function bindingWindow(quota: Quota | null, meter?: string): MeterStatus | null {
  if (!quota) return null;
  const name = meter ?? quota.meters[0]?.meter;
  let best: MeterStatus | null = null;
  for (const m of quota.meters) {
    if (m.meter !== name || m.limit == null) continue;
    if (!best || (m.percent ?? 0) > (best.percent ?? 0)) best = m;
  }
  return best;
}
