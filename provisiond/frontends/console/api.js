// The admin API client. The token lives in sessionStorage (this tab only, gone when it closes)
// and travels only in the Authorization header, never in a URL.

const TOKEN_KEY = "provisiond.token";
const BASE = "/api/v1";

/** A refused API call: the API's error body, with the HTTP status. */
export class ApiError extends Error {
  constructor(status, body) {
    const detail = (body && body.detail) || `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.code = (body && body.error) || "http";
    this.detail = detail;
    this.field = (body && body.field) || null;
    this.module = (body && body.module) || null;
  }
}

let onUnauthorized = () => {};

/** Called when a signed-in call answers 401 (the token was revoked). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Build "/path?k=v" from a path and a query object (undefined/null/"" values left out). */
export function withQuery(path, query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Call the API. Resolves to the decoded JSON (null for 204); rejects with ApiError on any 4xx/5xx
 * and with a plain Error when the server cannot be reached.
 */
export async function api(method, path, body, { token = getToken(), quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch (err) {
    throw new Error(`the server cannot be reached (${err.message})`);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !quiet401) onUnauthorized(error);
    throw error;
  }
  return data;
}
