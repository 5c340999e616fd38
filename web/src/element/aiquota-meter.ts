/**
 * `<aiquota-meter>`: the quota meter as a custom element, for Vue, Svelte and plain HTML.
 *
 * ```html
 * <aiquota-meter base-url="https://quota.example.com" meter="ai_requests"></aiquota-meter>
 * <script type="module">
 *   import "aiquota/element";
 *   document.querySelector("aiquota-meter").getToken = () => session.access_token;
 * </script>
 * ```
 *
 * Attributes: `base-url`, `meter`, `label`, and `token` (a fixed token, for demos; prefer the `getToken`
 * property). Themed with CSS custom properties on the element or any ancestor: `--aiquota-normal`,
 * `--aiquota-warning`, `--aiquota-critical`, `--aiquota-exceeded`, `--aiquota-track`, `--aiquota-height`,
 * `--aiquota-radius`, `--aiquota-font`, `--aiquota-text`. Renders nothing for an unlimited window.
 */
import { createClient, type TokenSource } from "../client.js";
import { bindingWindow, createQuotaStore, type QuotaStore } from "../store.js";
import { meterView } from "../view.js";

const STYLE = `
:host { display: block; font-family: var(--aiquota-font, system-ui, sans-serif); color: var(--aiquota-text, inherit); }
:host([hidden]), .hidden { display: none; }
.label { font-weight: 600; margin-bottom: 4px; }
.track { background: var(--aiquota-track, #e5e7eb); border-radius: var(--aiquota-radius, 6px);
  height: var(--aiquota-height, 10px); overflow: hidden; }
.fill { height: 100%; width: 0; transition: width .3s ease; }
.row { display: flex; justify-content: space-between; gap: 8px; font-size: .875em; margin-top: 4px; }
.error { color: var(--aiquota-critical, #dc2626); }
`;

/** The element class (registered as `aiquota-meter` when this module loads). */
export class AiquotaMeterElement extends HTMLElement {
  static observedAttributes = ["base-url", "meter", "label", "token"];

  private store: QuotaStore | null = null;
  private unsubscribe: (() => void) | null = null;
  private tick: ReturnType<typeof setInterval> | null = null;
  private tokenSource: TokenSource | null = null;
  private readonly root: ShadowRoot;

  constructor() {
    super();
    this.root = this.attachShadow({ mode: "open" });
    this.root.innerHTML = `<style>${STYLE}</style>
<div part="meter" class="hidden">
  <div part="label" class="label"></div>
  <div part="track" class="track" role="progressbar" aria-valuemin="0"><div part="fill" class="fill"></div></div>
  <div class="row"><span part="text" class="text"></span><span part="resets" class="resets"></span></div>
</div>
<div part="error" class="error hidden" role="alert"></div>`;
  }

  /** The token source (a function returning the user's JWT); setting it reconnects. */
  get getToken(): TokenSource | null {
    return this.tokenSource;
  }
  set getToken(fn: TokenSource | null) {
    this.tokenSource = fn;
    this.restart();
  }

  /**
   * Re-reads the quota now. Call it after your own consume: the live stream announces plan changes, resets
   * and status changes (warning, critical, exceeded), not every single use.
   */
  refresh(): Promise<void> {
    return this.store?.refresh() ?? Promise.resolve();
  }

  connectedCallback(): void {
    this.restart();
    this.tick = setInterval(() => this.render(), 1000);
  }

  disconnectedCallback(): void {
    this.stop();
    if (this.tick) clearInterval(this.tick);
    this.tick = null;
  }

  attributeChangedCallback(name: string, old: string | null, value: string | null): void {
    if (old === value) return;
    if (name === "base-url" || name === "token") this.restart();
    else this.render();
  }

  private stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.store = null;
  }

  private restart(): void {
    this.stop();
    const baseUrl = this.getAttribute("base-url");
    const source = this.tokenSource ?? (() => this.getAttribute("token"));
    if (!this.isConnected || baseUrl == null) return;
    const store = createQuotaStore(createClient({ baseUrl, getToken: source }));
    this.store = store;
    this.unsubscribe = store.subscribe(() => this.render());
    this.render();
  }

  private el(name: string): HTMLElement {
    return this.root.querySelector(`[part="${name}"]`) as HTMLElement;
  }

  private render(): void {
    const snap = this.store?.getSnapshot();
    const box = this.el("meter");
    const err = this.el("error");
    const w = bindingWindow(snap?.quota ?? null, this.getAttribute("meter") ?? undefined);
    const v = w ? meterView(w) : null;
    err.classList.toggle("hidden", !(snap?.error && !snap.quota));
    err.textContent = snap?.error && !snap.quota ? snap.error.detail : "";
    if (!w || !v) {
      box.classList.add("hidden");
      this.removeAttribute("status");
      return;
    }
    box.classList.remove("hidden");
    this.setAttribute("status", v.status);
    const label = this.getAttribute("label");
    this.el("label").textContent = label ?? "";
    this.el("label").classList.toggle("hidden", !label);
    const track = this.el("track");
    track.setAttribute("aria-valuemax", String(w.limit));
    track.setAttribute("aria-valuenow", String(w.used));
    track.setAttribute("aria-label", v.text);
    const fill = this.el("fill");
    fill.style.width = `${v.percent}%`;
    fill.style.background = v.color;
    this.el("text").textContent = v.label ? `${v.text} · ${v.label}` : v.text;
    this.el("resets").textContent = v.resets;
  }
}

if (typeof customElements !== "undefined" && !customElements.get("aiquota-meter")) {
  customElements.define("aiquota-meter", AiquotaMeterElement);
}
