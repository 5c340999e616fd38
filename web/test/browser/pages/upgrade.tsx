// The upgrade flow: the gate's button creates a Razorpay payment link through the API and goes to it; the
// callback lands here, completeUpgrade() has the API verify it, and the live meter shows the new plan.
import { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";

import { completeUpgrade } from "../../../src/index.js";
import { AiquotaProvider, QuotaGate, QuotaMeter, useAiquota, useQuota } from "../../../src/react/index.js";
import { api, token } from "./params.js";

function Billing() {
  const { client, store } = useAiquota();
  const { quota } = useQuota();
  const [message, setMessage] = useState<string | null>(null);
  useEffect(() => {
    completeUpgrade(client)
      .then(async (v) => {
        if (!v) return;
        // The plan changed: read it now rather than wait for the live stream, which may have connected only
        // after the change was announced.
        await store.refresh();
        setMessage(`Payment ${v.outcome}: you are on ${v.plan}.`);
      })
      .catch((e: Error) => setMessage(e.message));
  }, [client, store]);
  return (
    <div>
      {message ? <p data-testid="upgraded" role="status">{message}</p> : null}
      <p data-testid="plan">Plan: {quota?.plan ?? "…"}</p>
      <QuotaMeter meter="ai_requests" label="AI requests" />
      <QuotaGate meter="ai_requests" product="pro_week" upgradeLabel="Upgrade to Pro for a week">
        <p data-testid="gated">You can chat.</p>
      </QuotaGate>
    </div>
  );
}

createRoot(document.getElementById("react")!).render(
  <AiquotaProvider baseUrl={api} getToken={() => token}>
    <Billing />
  </AiquotaProvider>,
);
