// The segmentation API as the dashboard calls it: same origin, bearer token, errors turned into
// messages a person can act on.

const TOKEN_KEY = "tierstream.dashboard.token";

export const tokenStore = {
  get() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** Take `#token=…` out of the address (fragments never reach a server) and keep it for this tab. */
export function takeTokenFromFragment() {
  const hash = window.location.hash;
  if (!hash.startsWith("#token=")) return false;
  const token = new URLSearchParams(hash.slice(1)).get("token");
  if (token) tokenStore.set(token.trim());
  // Drop the token from the address bar and from history; land on the overview.
  window.history.replaceState(null, "", `${window.location.pathname}${window.location.search}#/overview`);
  return Boolean(token);
}

export class ApiError extends Error {
  constructor(kind, status, title, detail, body = null) {
    super(`${title}${detail ? `: ${detail}` : ""}`);
    this.kind = kind; // "auth" | "forbidden" | "unavailable" | "network" | "invalid" | "conflict" | "missing" | "server"
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.body = body;
  }
}

/** The service answers under the path the dashboard was served from, minus "/dashboard/…". */
function apiBase() {
  const path = window.location.pathname;
  const at = path.lastIndexOf("/dashboard");
  return at >= 0 ? path.slice(0, at) : "";
}

function detailOf(body) {
  if (!body) return "";
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) {
    return body.detail.map((e) => `${(e.loc || []).slice(1).join(".") || "request"}: ${e.msg}`).join("; ");
  }
  return "";
}

function errorFor(status, body, retryAfter) {
  const detail = detailOf(body);
  switch (status) {
    case 401:
      return new ApiError("auth", status, "The token was not accepted (401)", detail || "sign in again");
    case 403: {
      const scope = body && body.missing_scope ? body.missing_scope : "a scope it lacks";
      return new ApiError("forbidden", status, `This token may not do that (403): it lacks ${scope}`, detail, body);
    }
    case 404:
      return new ApiError("missing", status, "Not found (404)", detail, body);
    case 409:
      return new ApiError("conflict", status, "Not possible now (409)", detail, body);
    case 422:
      return new ApiError("invalid", status, "Invalid input (422)", detail, body);
    case 503:
      return new ApiError(
        "unavailable",
        status,
        "The segmentation service is unavailable (503)",
        `${detail || "its database does not answer"}${retryAfter ? `; retry in ${retryAfter} s` : ""}`,
        body,
      );
    default:
      return new ApiError("server", status, `The service failed (HTTP ${status})`, detail, body);
  }
}

/** GET or POST JSON; resolves to the parsed body or rejects with an ApiError. */
export async function request(path, { method = "GET", body, token = tokenStore.get() } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`${apiBase()}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (exc) {
    throw new ApiError(
      "network",
      0,
      "Cannot reach the segmentation service",
      `is it running at ${window.location.origin}? (${exc.message})`,
    );
  }
  let parsed = null;
  const text = await response.text();
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (!response.ok) throw errorFor(response.status, parsed, response.headers.get("Retry-After"));
  return parsed;
}

/** The largest `offset` a list accepts (the API's bound: a larger one is a 422). */
export const MAX_OFFSET = 10_000_000;

/** `offset` from the address: a whole number, at least 0, at most MAX_OFFSET. */
export function offsetParam(params) {
  const value = Number.parseInt(params.get("offset") || "0", 10);
  return Number.isNaN(value) ? 0 : Math.min(MAX_OFFSET, Math.max(0, value));
}

/** The offset of the last page of a list of `total` rows, `limit` a page (0 for an empty list). */
export function lastPageOffset(total, limit) {
  return total > 0 ? Math.floor((total - 1) / limit) * limit : 0;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

let segmentRules = null; // the R×F rule table (codes, labels, cells): fixed while the service runs

export const api = {
  caller: (token) => request("/caller", { token }),
  distributions: () => request("/distributions"),
  rfmGrid: () => request("/distributions/rfm-grid"),
  /** The segments of the rule table, fetched once per page load. */
  async segments() {
    if (!segmentRules) segmentRules = (await request("/distributions/rfm-grid")).segments;
    return segmentRules;
  },
  customers: (params) => request(`/customers${query(params)}`),
  regions: () => request("/distributions/regions"),
  alert: (id) => request(`/alerts/${encodeURIComponent(id)}`),
  customerView: (id) => request(`/customers/${encodeURIComponent(id)}/view`),
  alerts: (params) => request(`/alerts${query(params)}`),
  acknowledge: (id) => request(`/alerts/${encodeURIComponent(id)}/acknowledgement`, { method: "POST", body: {} }),
  snooze: (id, until) => request(`/alerts/${encodeURIComponent(id)}/snooze`, { method: "POST", body: { until } }),
  close: (id, reason) => request(`/alerts/${encodeURIComponent(id)}/closure`, { method: "POST", body: { reason } }),
};
