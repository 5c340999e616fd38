// The aiquota admin dashboard: plain browser JavaScript, no build step, served from the API binary.
// It keeps the admin credential in sessionStorage (this tab only) and calls the admin routes on the same
// origin. Every value from the API goes into the page as text (never as HTML), and every API error is shown
// as the problem's `detail`.
// @ts-check

const KEY = "aiquota.admin.credential";
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** An error answer of the API, with the problem's detail. */
class ApiProblem extends Error {
  /** @param {number} status @param {string} detail */
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/**
 * Calls the API with the stored credential.
 * @param {string} method @param {string} path @param {unknown} [body]
 */
async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY) ?? ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  /** @type {any} */
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiProblem(res.status, (data && (data.detail || data.title)) || `HTTP ${res.status}`);
  return data;
}

/**
 * Builds an element; strings become text nodes, so API values can never inject markup.
 * @param {string} tag @param {Record<string, string>} [attrs] @param {...(Node|string|number|null|undefined)} children
 */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) if (c != null) e.append(typeof c === "number" ? String(c) : c);
  return e;
}

/** @param {string} id @param {Node[]} rows */
function fill(id, rows) {
  const body = /** @type {HTMLElement} */ ($(id).querySelector("tbody"));
  body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "8" }, "none"))]));
}

/** @param {unknown} e */
function showError(e) {
  const t = $("toast");
  t.textContent = e instanceof Error ? e.message : String(e);
  t.hidden = false;
  if (e instanceof ApiProblem && e.status === 401) signOut();
}

function clearError() {
  $("toast").hidden = true;
}

/** @param {string | null | undefined} t */
const when = (t) => (t ? new Date(t).toLocaleString() : "never");

/**
 * A bar chart of days: requests up, denials in red on top.
 * @param {string} id @param {{day: string, requests: number, denials: number}[]} days
 */
function chart(id, days) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const w = 700, h = 140, pad = 16;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img");
  const max = Math.max(1, ...days.map((d) => d.requests + d.denials));
  const bw = (w - pad) / Math.max(1, days.length);
  days.forEach((d, i) => {
    const x = pad + i * bw;
    const rh = ((h - 2 * pad) * d.requests) / max;
    const dh = ((h - 2 * pad) * d.denials) / max;
    for (const [cls, y, hh, n] of [["req", h - pad - rh, rh, d.requests], ["den", h - pad - rh - dh, dh, d.denials]]) {
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("class", String(cls));
      r.setAttribute("x", String(x + 2));
      r.setAttribute("y", String(y));
      r.setAttribute("width", String(Math.max(1, bw - 4)));
      r.setAttribute("height", String(hh));
      const title = document.createElementNS(ns, "title");
      title.textContent = `${d.day}: ${n} ${cls === "req" ? "requests" : "denials"}`;
      r.append(title);
      svg.append(r);
    }
    // A date under every bar while they fit, else under every fifth.
    if (days.length > 14 && (days.length - 1 - i) % 5 !== 0) return;
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", String(x + 2));
    label.setAttribute("y", String(h - 3));
    label.textContent = d.day.slice(5);
    svg.append(label);
  });
  $(id).replaceChildren(svg);
}

async function loadAnalytics() {
  const today = new Date();
  const days = [];
  for (let i = 13; i >= 0; i--) {
    const d = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i));
    days.push(d.toISOString().slice(0, 10));
  }
  const rows = await Promise.all(days.map((d) => api("GET", `/v1/admin/analytics?day=${d}`)));
  const t = rows[rows.length - 1];
  $("analytics-meter").textContent = t.meter;
  $("stat-total").textContent = String(t.total_users);
  $("stat-active").textContent = String(t.active_users);
  $("stat-at-limit").textContent = String(t.users_at_limit);
  $("stat-requests").textContent = String(t.requests);
  $("stat-denials").textContent = String(t.denials);
  chart("chart-days", rows.map((r) => ({ day: r.day, requests: r.requests, denials: r.denials })));
  const top = await api("GET", "/v1/admin/top-users?limit=10&by=today");
  fill("top-users", top.map((/** @type {any} */ u) => {
    const link = el("a", { "data-user": u.user_id }, u.user_id);
    link.addEventListener("click", () => void openUser(u.user_id));
    return el("tr", {}, el("td", {}, u.rank), el("td", {}, link), el("td", {}, u.plan ?? ""), el("td", {}, u.usage),
      el("td", {}, u.requests), el("td", {}, u.denials));
  }));
}

/** @type {string | null} */
let current = null;

/** @param {string} id */
async function openUser(id) {
  clearError();
  current = id;
  const enc = encodeURIComponent(id);
  const [windows, history, credits, audit] = await Promise.all([
    api("GET", `/v1/admin/users/${enc}`),
    api("GET", `/v1/admin/users/${enc}/history?days=30`),
    api("GET", `/v1/admin/users/${enc}/credits`),
    api("GET", `/v1/admin/users/${enc}/audit?limit=50`),
  ]);
  /** @type {any} */
  let account = null;
  try {
    account = await api("GET", `/v1/admin/users/${enc}/account`);
  } catch (e) {
    if (!(e instanceof ApiProblem && e.status === 404)) throw e;
  }
  $("user").hidden = false;
  $("user-id").textContent = id;
  const effective = windows[0]?.plan;
  $("user-account").textContent = account
    ? `Plan ${account.plan}${effective && effective !== account.plan ? ` (effective: ${effective})` : ""}, ` +
      `expires ${when(account.plan_expires_at)}; timezone ${account.timezone ?? "default"}; since ${when(account.created_at)}.`
    : `No account yet: the default plan${effective ? ` (${effective})` : ""} applies.`;
  $("user-account").dataset.plan = account?.plan ?? effective ?? "";
  fill("user-windows", windows.map((/** @type {any} */ w) => el("tr", { "data-meter": w.meter, "data-period": w.period },
    el("td", {}, w.meter), el("td", {}, w.period), el("td", {}, w.used), el("td", {}, w.limit ?? "unlimited"),
    el("td", { class: `status-${w.status}` }, w.status), el("td", {}, when(w.resets_at)), el("td", {}, w.today),
    el("td", {}, w.all_time))));
  chart("chart-user", history.map((/** @type {any} */ d) => ({ day: d.day, requests: d.requests, denials: d.denials })));
  fill("user-credits", credits.map((/** @type {any} */ c) => el("tr", { "data-meter": c.meter },
    el("td", {}, c.meter), el("td", {}, c.remaining), el("td", {}, when(c.next_expiry)), el("td", {}, c.grants))));
  fill("user-audit", audit.map(auditRow));
  return audit;
}

/** @param {any} a */
function auditRow(a) {
  return el("tr", { "data-action": a.action }, el("td", {}, a.id), el("td", {}, when(a.created_at)), el("td", {}, a.actor),
    el("td", {}, a.action), el("td", {}, el("code", {}, JSON.stringify(a.details))));
}

/** @param {string} v */
const isoOrNull = (v) => (v ? new Date(v).toISOString() : null);

/**
 * Wires an action form: confirm, call, then show the audit row the action wrote.
 * @param {string} id @param {(f: FormData) => [string, string, unknown, string]} build
 */
function action(id, build) {
  const form = /** @type {HTMLFormElement} */ ($(id));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!current) return;
    clearError();
    const [method, path, body, question] = build(new FormData(form));
    if (!window.confirm(question)) return;
    try {
      const before = await api("GET", `/v1/admin/users/${encodeURIComponent(current)}/audit?limit=1`);
      await api(method, path, body);
      const audit = await openUser(current);
      const wrote = audit.find((/** @type {any} */ a) => !before[0] || a.id > before[0].id);
      $("last-action").hidden = false;
      $("last-audit").textContent = wrote ? JSON.stringify(wrote, null, 2) : "(no audit entry found)";
      void loadAnalytics().catch(showError);
    } catch (e) {
      showError(e);
    }
  });
}

function wireActions() {
  const u = () => `/v1/admin/users/${encodeURIComponent(current ?? "")}`;
  action("form-plan", (f) => {
    const plan = String(f.get("plan"));
    const expires = isoOrNull(String(f.get("expires_at") ?? ""));
    return ["PUT", `${u()}/plan`, { plan, expires_at: expires }, `Put ${current} on plan ${plan}${expires ? ` until ${when(expires)}` : ""}?`];
  });
  action("form-limit", (f) => {
    const raw = String(f.get("limit") ?? "");
    const limit = raw === "" ? null : Number(raw);
    const meter = String(f.get("meter")), period = String(f.get("period"));
    return ["PUT", `${u()}/limits`, { meter, period, limit },
      limit == null ? `Remove ${current}'s custom ${period} limit of ${meter}?` : `Set ${current}'s ${period} limit of ${meter} to ${limit}?`];
  });
  action("form-reset", (f) => {
    const meter = String(f.get("meter") ?? "") || null;
    return ["POST", `${u()}/reset`, meter ? { meter } : {}, `Reset ${current}'s current usage of ${meter ?? "every meter"}?`];
  });
  action("form-grant", (f) => {
    const meter = String(f.get("meter")), amount = Number(f.get("amount"));
    const expires = isoOrNull(String(f.get("expires_at") ?? ""));
    const source = String(f.get("source") ?? "") || "admin";
    return ["POST", `${u()}/grants`, { meter, amount, expires_at: expires, source }, `Grant ${current} ${amount} ${meter} credits?`];
  });
}

function signOut() {
  sessionStorage.removeItem(KEY);
  $("app").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
}

async function signedIn() {
  await loadAnalytics();
  $("signin").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  wireActions();
  $("signout").addEventListener("click", signOut);
  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearError();
    sessionStorage.setItem(KEY, /** @type {HTMLInputElement} */ ($("credential")).value.trim());
    try {
      await signedIn();
    } catch (e) {
      sessionStorage.removeItem(KEY);
      showError(e);
    }
  });
  $("lookup-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    void openUser(/** @type {HTMLInputElement} */ ($("lookup-id")).value.trim()).catch(showError);
  });
  if (sessionStorage.getItem(KEY)) signedIn().catch((e) => { signOut(); showError(e); });
  else $("signin").hidden = false;
});
