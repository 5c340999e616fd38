// The meter page: the React <QuotaMeter> and the <aiquota-meter> element side by side, on another origin
// than the API (so every call is a real CORS request).
import { createRoot } from "react-dom/client";

import { AiquotaProvider, QuotaGate, QuotaMeter } from "../../../src/react/index.js";
import "../../../src/element/index.js";
import { api, meter, token } from "./params.js";

createRoot(document.getElementById("react")!).render(
  <AiquotaProvider baseUrl={api} getToken={() => token}>
    <QuotaMeter meter={meter} label="AI requests" />
    <QuotaGate meter={meter} product="pro_week">
      <p data-testid="gated">You can chat.</p>
    </QuotaGate>
  </AiquotaProvider>,
);
const el = document.createElement("aiquota-meter");
el.setAttribute("base-url", api);
el.setAttribute("meter", meter);
el.setAttribute("label", "AI requests (custom element)");
(el as unknown as { getToken: () => string }).getToken = () => token;
document.getElementById("element")!.append(el);
