// A CopilotKit-style chat: the "SDK" below calls the page's global fetch, as CopilotKit does, and retries a
// failed request twice, as the OpenAI SDK does by default. With useCopilotKitQuota the first denial is shown
// and no retry or later message reaches the API.
import { useState } from "react";
import { createRoot } from "react-dom/client";

import { AiquotaProvider, QuotaMeter, useCopilotKitQuota } from "../../../src/react/index.js";
import { api, token } from "./params.js";

const runtimeUrl = `${api}/v1/quota/consume`;

async function sdkSend(text: string): Promise<string> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const res = await fetch(runtimeUrl, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ meter: "ai_requests", amount: 1, metadata: { text } }),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const d = (await res.json()) as { remaining: number };
      return `ok, ${d.remaining} left`;
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

function Chat() {
  const { denial } = useCopilotKitQuota(runtimeUrl, "ai_requests");
  const [log, setLog] = useState<string[]>([]);
  const send = async (): Promise<void> => {
    try {
      const r = await sdkSend(`message ${log.length + 1}`);
      setLog((l) => [...l, r]);
    } catch (e) {
      setLog((l) => [...l, `error: ${(e as Error).message}`]);
    }
  };
  return (
    <div>
      <QuotaMeter meter="ai_requests" />
      <button type="button" data-testid="send" onClick={() => void send()}>Send</button>
      {denial ? <p data-testid="denial" role="alert">{denial.reason}</p> : null}
      <ol data-testid="log">{log.map((l, i) => <li key={i}>{l}</li>)}</ol>
    </div>
  );
}

createRoot(document.getElementById("react")!).render(
  <AiquotaProvider baseUrl={api} getToken={() => token}>
    <Chat />
  </AiquotaProvider>,
);
