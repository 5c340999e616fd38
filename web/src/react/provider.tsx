/** `<AiquotaProvider>`: one client and one live quota store for the components below it. */
import { createContext, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";

import { createClient, type AiquotaClient, type TokenSource } from "../client.js";
import { createQuotaStore, type QuotaStore } from "../store.js";

/** What the provider shares. */
export interface AiquotaContextValue {
  client: AiquotaClient;
  store: QuotaStore;
}

const Ctx = createContext<AiquotaContextValue | null>(null);

/** Props of {@link AiquotaProvider}. */
export interface AiquotaProviderProps {
  /** The API's origin. */
  baseUrl: string;
  /** The signed-in user's JWT; called before every request and reconnect, so it may refresh. */
  getToken: TokenSource;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
  /**
   * Who is signed in (e.g. the user id): when it changes (sign-in, sign-out, another user) the client and the
   * live quota start again for the new token. A stream refused with 401 is not retried otherwise.
   */
  userKey?: string | null;
  children?: ReactNode;
}

/** Makes the client and the live quota available to `useQuota`, `<QuotaMeter>` and `<QuotaGate>`. */
export function AiquotaProvider({ baseUrl, getToken, fetch, userKey, children }: AiquotaProviderProps) {
  // The latest getToken is used without rebuilding the client when the caller passes a new closure.
  const tokenRef = useRef(getToken);
  tokenRef.current = getToken;
  const value = useMemo(() => {
    const client = createClient({ baseUrl, getToken: () => tokenRef.current(), fetch });
    return { client, store: createQuotaStore(client) };
    // userKey is a dependency on purpose: a new user gets a new store.
  }, [baseUrl, fetch, userKey]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

/** The provider's client and store; throws outside a provider, which is always a mistake. */
export function useAiquota(): AiquotaContextValue {
  const v = useContext(Ctx);
  if (!v) throw new Error("aiquota/react: wrap your components in <AiquotaProvider baseUrl getToken>");
  return v;
}

/** The current time, updated every `everyMs` (for countdowns). */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}
