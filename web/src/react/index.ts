/** `aiquota/react`: the provider, the hook and the components. */
export { AiquotaProvider, useAiquota, useNow } from "./provider.js";
export type { AiquotaContextValue, AiquotaProviderProps } from "./provider.js";
export { useQuota } from "./use-quota.js";
export type { UseQuota } from "./use-quota.js";
export { QuotaMeter } from "./quota-meter.js";
export type { QuotaMeterProps } from "./quota-meter.js";
export { QuotaGate, UpgradeButton } from "./quota-gate.js";
export type { QuotaGateProps, UpgradeButtonProps } from "./quota-gate.js";
export { useCopilotKitQuota, useQuotaFetch } from "./copilotkit.js";
export type { UseQuotaFetch } from "./copilotkit.js";
