/** `aiquota/element`: importing it registers `<aiquota-meter>`; the core API is re-exported for plain pages. */
export { AiquotaMeterElement } from "./aiquota-meter.js";
export * from "../index.js";
