/**
 * Errors the kit throws. Every error body of the aiquota API is RFC 9457 problem+json; a quota denial
 * (`quota-exceeded`) becomes a {@link QuotaError} with the decision's fields, anything else an
 * {@link ApiError} with the problem's `detail`, so a UI can always show a sentence a person understands.
 */

/** The members of a problem body this kit reads; a denial carries the decision's fields beside them. */
export interface ProblemBody {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
  request_id?: string;
  [member: string]: unknown;
}

/** A non-2xx answer of the API that is not a quota denial. */
export class ApiError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** The problem's `type` (e.g. `/problems/not-found`), or `undefined` for a body that was not a problem. */
  readonly type: string | undefined;
  /** The problem's `detail` (or its title, or the status text): the sentence to show. */
  readonly detail: string;
  /** The whole body as parsed. */
  readonly problem: ProblemBody;
  /** `x-request-id`, to find the request in the API's logs. */
  readonly requestId: string | undefined;

  constructor(status: number, problem: ProblemBody, fallback = "") {
    const detail = str(problem.detail) ?? str(problem.title) ?? (fallback || `HTTP ${status}`);
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.type = str(problem.type);
    this.detail = detail;
    this.problem = problem;
    this.requestId = str(problem.request_id);
  }
}

/**
 * The quota refused the request. `retryAfterS` is `null` when it can never pass on the user's plan (only an
 * upgrade helps); otherwise waiting that long (until `resetsAt`) lets it through.
 */
export class QuotaError extends ApiError {
  /** Why, for a person: "Daily limit of 10 ai_requests reached. Resets in 3h 45m." */
  readonly reason: string;
  /** When the binding window ends, or `null` when unknown. */
  readonly resetsAt: Date | null;
  /** Seconds until the request can pass; `null`: never on this plan. */
  readonly retryAfterS: number | null;
  /** The quota status of the binding window (`exceeded`, ...). */
  readonly quotaStatus: string | undefined;
  /** Meter, plan, used, limit, remaining, period as the API reported them. */
  readonly meter: string | undefined;
  readonly plan: string | undefined;
  readonly used: number | undefined;
  readonly limit: number | null | undefined;
  readonly remaining: number | null | undefined;
  readonly period: string | undefined;

  constructor(status: number, problem: ProblemBody, retryAfterHeader?: string | null) {
    super(status, problem, "Quota exceeded");
    this.name = "QuotaError";
    this.reason = this.detail;
    const resets = str(problem.resets_at);
    const at = resets ? new Date(resets) : null;
    this.resetsAt = at && !Number.isNaN(at.getTime()) ? at : null;
    const fromBody = num(problem.retry_after_s);
    const fromHeader = retryAfterHeader ? Number.parseInt(retryAfterHeader, 10) : NaN;
    this.retryAfterS = fromBody ?? (Number.isFinite(fromHeader) ? fromHeader : null);
    this.quotaStatus = str(problem.quota_status);
    this.meter = str(problem.meter);
    this.plan = str(problem.plan);
    this.used = num(problem.used) ?? undefined;
    this.limit = nullableNum(problem.limit);
    this.remaining = nullableNum(problem.remaining);
    this.period = str(problem.period);
  }
}

/** True for the problem type of a quota denial: aiquota's `/problems/quota-exceeded` or the IANA one. */
export function isQuotaProblem(problem: ProblemBody): boolean {
  const t = str(problem.type) ?? "";
  return t === "/problems/quota-exceeded" || t.endsWith("#quota-exceeded") || problem.problem === "quota-exceeded";
}

/**
 * The error for a non-2xx answer whose body is already parsed (`body` may be anything: a non-object yields
 * an {@link ApiError} with the status text).
 */
export function errorFromBody(status: number, headers: Headers, body: unknown, statusText = ""): ApiError {
  const problem: ProblemBody = body && typeof body === "object" && !Array.isArray(body) ? { ...(body as ProblemBody) } : {};
  if (problem.request_id === undefined) {
    const id = headers.get("x-request-id");
    if (id) problem.request_id = id;
  }
  if ((status === 429 || status === 403) && isQuotaProblem(problem)) {
    return new QuotaError(status, problem, headers.get("retry-after"));
  }
  return new ApiError(status, problem, statusText);
}

/**
 * Reads an error response into the matching error. A body that is not JSON still yields an
 * {@link ApiError} with the status text, so callers never need a second code path.
 */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  let body: unknown = undefined;
  try {
    const text = await res.text();
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: fall back to the status line.
  }
  return errorFromBody(res.status, res.headers, body, res.statusText);
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}
function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
function nullableNum(v: unknown): number | null | undefined {
  if (v === null) return null;
  return num(v) ?? undefined;
}
