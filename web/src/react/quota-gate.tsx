/** `<QuotaGate>`: its children while the quota allows, a fallback with an upgrade button when it does not. */
import { useState, type ReactNode } from "react";

import { ApiError } from "../errors.js";
import { resetsIn } from "../format.js";
import { startUpgrade } from "../upgrade.js";
import { useAiquota, useNow } from "./provider.js";
import { useQuota } from "./use-quota.js";

/** Props of {@link QuotaGate}. */
export interface QuotaGateProps {
  /** The meter that gates (default: the plan's first meter). */
  meter?: string;
  /** The product the upgrade button buys (a key of `quota.products`); no button without it. */
  product?: string;
  /** The upgrade button's text. */
  upgradeLabel?: string;
  /** Replaces the default fallback. */
  fallback?: ReactNode;
  /** Shown before the first read (default: the children). */
  loading?: ReactNode;
  children?: ReactNode;
}

/** Renders `children` while `meter` has quota left; when it is used up, the fallback and an upgrade button. */
export function QuotaGate({ meter, product, upgradeLabel = "Upgrade", fallback, loading, children }: QuotaGateProps) {
  const q = useQuota(meter);
  const now = useNow(1000);
  if (q.loading) return <>{loading ?? children}</>;
  if (!q.exhausted || !q.window) return <>{children}</>;
  if (fallback !== undefined) return <>{fallback}</>;
  return (
    <div role="status" data-aiquota-gate="exhausted">
      <p>
        You have used all {q.window.limit} {q.window.meter} on the {q.quota?.plan ?? "current"} plan.{" "}
        {resetsIn(q.window.resets_at, now)}.
      </p>
      {product ? <UpgradeButton product={product} label={upgradeLabel} /> : null}
    </div>
  );
}

/** Props of {@link UpgradeButton}. */
export interface UpgradeButtonProps {
  product: string;
  label?: string;
  /** Where to go (default `location.assign`); tests and SPAs may pass their own. */
  navigate?: (url: string) => void;
}

/** Creates a Razorpay payment link for `product` and goes to it; shows the API's detail on failure. */
export function UpgradeButton({ product, label = "Upgrade", navigate }: UpgradeButtonProps) {
  const { client } = useAiquota();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const onClick = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await startUpgrade(client, product, navigate);
    } catch (e) {
      setError(e instanceof ApiError ? e.detail : String(e));
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" onClick={() => void onClick()} disabled={busy} data-aiquota-upgrade={product}>
        {busy ? "Opening checkout…" : label}
      </button>
      {error ? <p role="alert">{error}</p> : null}
    </>
  );
}
