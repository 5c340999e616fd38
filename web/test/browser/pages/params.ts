// The test pages read where the API is and whose token to use from their query string.
const q = new URLSearchParams(location.search);
export const api = q.get("api") ?? "";
export const token = q.get("token") ?? "";
export const meter = q.get("meter") ?? "ai_requests";
