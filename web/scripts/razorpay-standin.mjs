// A local stand-in for Razorpay, for development (`make run`) and the browser tests: the two Payment Links
// API calls the API makes (POST /v1/payment_links, GET /v1/payment_links/{id}, HTTP Basic with the key id
// and secret) and a hosted checkout page at each link's short_url. "Pay" marks the link paid and sends the
// browser to its callback_url with the five parameters, signed as Razorpay signs them: hex HMAC-SHA256 with
// the key secret over `payment_link_id|reference_id|status|payment_id` (see docs/payments.md).
//
//   AIQUOTA_RAZORPAY_KEY_ID=rzp_test_x AIQUOTA_RAZORPAY_KEY_SECRET=... node scripts/razorpay-standin.mjs PORT
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

/**
 * Starts the stand-in on 127.0.0.1:`port` (0 picks one).
 * @param {{ port: number, keyId: string, keySecret: string }} o
 * @returns {Promise<{ url: string, close: () => Promise<void>, links: Map<string, any> }>}
 */
export async function startStandin({ port, keyId, keySecret }) {
  /** @type {Map<string, any>} */
  const links = new Map();
  const expected = Buffer.from(`Basic ${Buffer.from(`${keyId}:${keySecret}`).toString("base64")}`);
  let base = "";
  const authorized = (/** @type {string | undefined} */ h) => {
    const got = Buffer.from(h ?? "");
    return got.length === expected.length && timingSafeEqual(got, expected);
  };
  const send = (res, status, body, type = "application/json") => {
    res.writeHead(status, { "content-type": type });
    res.end(typeof body === "string" ? body : JSON.stringify(body));
  };
  const rzpError = (res, status, description) =>
    send(res, status, { error: { code: "BAD_REQUEST_ERROR", description } });
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", base);
      const m = url.pathname.match(/^\/v1\/payment_links(?:\/([A-Za-z0-9_]+))?$/);
      if (m) {
        if (!authorized(req.headers.authorization)) return rzpError(res, 401, "Authentication failed");
        if (req.method === "POST" && !m[1]) {
          let body;
          try {
            body = JSON.parse(raw);
          } catch {
            return rzpError(res, 400, "invalid JSON");
          }
          if (!Number.isInteger(body.amount) || typeof body.currency !== "string" || !body.reference_id) {
            return rzpError(res, 400, "amount, currency and reference_id are required");
          }
          if ([...links.values()].some((l) => l.reference_id === body.reference_id)) {
            return rzpError(res, 400, "reference_id already exists");
          }
          const id = `plink_${randomBytes(7).toString("hex")}`;
          const link = {
            id, entity: "payment_link", amount: body.amount, amount_paid: 0, currency: body.currency,
            accept_partial: body.accept_partial ?? false, reference_id: body.reference_id, status: "created",
            short_url: `${base}/pay/${id}`, callback_url: body.callback_url, callback_method: body.callback_method,
            description: body.description, notes: body.notes ?? {}, payments: null,
          };
          links.set(id, link);
          return send(res, 200, link);
        }
        if (req.method === "GET" && m[1]) {
          const link = links.get(m[1]);
          return link ? send(res, 200, link) : rzpError(res, 400, "The id provided does not exist");
        }
        return rzpError(res, 405, "method not allowed");
      }
      const pay = url.pathname.match(/^\/pay\/(plink_[a-f0-9]+)$/);
      const link = pay ? links.get(pay[1]) : undefined;
      if (!link) return send(res, 404, "no such payment link", "text/plain");
      if (req.method === "GET") {
        const price = `${(link.amount / 100).toFixed(2)} ${link.currency}`;
        return send(res, 200, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Razorpay stand-in</title>
<style>body{font-family:system-ui,sans-serif;max-width:420px;margin:48px auto;padding:24px;border:1px solid #ddd;border-radius:12px}
button{font:inherit;padding:10px 18px;border-radius:8px;border:0;background:#2563eb;color:#fff;cursor:pointer}</style></head>
<body><p><strong>Razorpay stand-in</strong> (local development; no money moves)</p>
<h1 data-testid="price">${esc(price)}</h1><p>${esc(link.description ?? "")}</p>
<form method="post"><button type="submit" data-testid="pay">Pay ${esc(price)}</button></form></body></html>`, "text/html; charset=utf-8");
      }
      if (req.method === "POST") {
        const paymentId = link.payments?.[0]?.payment_id ?? `pay_${randomBytes(7).toString("hex")}`;
        link.amount_paid = link.amount;
        link.status = "paid";
        link.payments = [{ payment_id: paymentId, amount: link.amount, status: "captured", method: "upi",
          created_at: Math.floor(Date.now() / 1000) }];
        const sig = createHmac("sha256", keySecret)
          .update(`${link.id}|${link.reference_id}|paid|${paymentId}`).digest("hex");
        const back = new URL(link.callback_url);
        back.searchParams.set("razorpay_payment_id", paymentId);
        back.searchParams.set("razorpay_payment_link_id", link.id);
        back.searchParams.set("razorpay_payment_link_reference_id", link.reference_id);
        back.searchParams.set("razorpay_payment_link_status", "paid");
        back.searchParams.set("razorpay_signature", sig);
        res.writeHead(303, { location: back.toString() });
        return res.end();
      }
      return send(res, 405, "method not allowed", "text/plain");
    });
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  base = `http://127.0.0.1:${server.address().port}`;
  return {
    url: base,
    links,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const keyId = process.env.AIQUOTA_RAZORPAY_KEY_ID;
  const keySecret = process.env.AIQUOTA_RAZORPAY_KEY_SECRET;
  if (!keyId || !keySecret) {
    console.error("set AIQUOTA_RAZORPAY_KEY_ID and AIQUOTA_RAZORPAY_KEY_SECRET");
    process.exit(2);
  }
  const s = await startStandin({ port: Number(process.argv[2] ?? 0), keyId, keySecret });
  console.log(`Razorpay stand-in on ${s.url}`);
}
