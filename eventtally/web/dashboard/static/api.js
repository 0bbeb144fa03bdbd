// The API, as the dashboard calls it: this server only, the key as the Bearer header.

const KEY_NAME = "eventtally.apiKey";

// The server's root, wherever the page is mounted ("/" or "/dashboard" both give "/").
const BASE = new URL("./", document.baseURI);

export class ApiError extends Error {
  constructor(status, message, { retryAt = null } = {}) {
    super(message);
    this.status = status; // 0: the server could not be reached
    this.retryAt = retryAt; // ms since the epoch, for a 429
  }
}

export const session = {
  get key() {
    return sessionStorage.getItem(KEY_NAME);
  },
  set key(value) {
    if (value) sessionStorage.setItem(KEY_NAME, value);
    else sessionStorage.removeItem(KEY_NAME);
  },
};

// The rate-limit headers of the last answer, for the footer.
export const rate = { limit: null, remaining: null, reset: null };
const listeners = new Set();
export function onRate(listener) {
  listeners.add(listener);
}

/** A key must be printable ASCII without spaces to travel in a header. */
export function plausibleKey(text) {
  return /^[\x21-\x7e]{1,512}$/.test(text);
}

function retryAt(headers) {
  const after = headers.get("Retry-After");
  if (after && /^\d+$/.test(after.trim())) return Date.now() + Number(after) * 1000;
  if (after) {
    const date = Date.parse(after);
    if (!Number.isNaN(date)) return date;
  }
  const reset = headers.get("X-RateLimit-Reset");
  if (reset && /^\d+$/.test(reset.trim())) return Number(reset) * 1000;
  return null;
}

/**
 * GET `path` with `params` (empty values left out); the parsed JSON, or an ApiError
 * carrying the server's own message.
 */
export async function get(path, params = {}, { key = session.key, signal } = {}) {
  const url = new URL(path, BASE);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  let response;
  try {
    response = await fetch(url, {
      headers: { Authorization: `Bearer ${key ?? ""}`, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
      signal,
    });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(0, "The server could not be reached. Is eventtally still running?");
  }
  const limit = response.headers.get("X-RateLimit-Limit");
  if (limit) {
    rate.limit = Number(limit);
    rate.remaining = Number(response.headers.get("X-RateLimit-Remaining"));
    rate.reset = Number(response.headers.get("X-RateLimit-Reset"));
    for (const listener of listeners) listener(rate, path);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message =
      body && typeof body.message === "string" && body.message
        ? body.message
        : `HTTP ${response.status} ${response.statusText}`.trim();
    throw new ApiError(response.status, message, {
      retryAt: response.status === 429 ? retryAt(response.headers) : null,
    });
  }
  return { body, headers: response.headers };
}

/** Every page of a paged list endpoint, up to `maxPages`. */
export async function allPages(path, field, perPage, maxPages, params = {}) {
  const items = [];
  for (let page = 0; page < maxPages; page++) {
    const { body } = await get(path, { ...params, page });
    const found = Array.isArray(body[field]) ? body[field] : [];
    items.push(...found);
    if (found.length < perPage) return { items, complete: true };
  }
  return { items, complete: false };
}

export function serverRoot() {
  return BASE.href.replace(/\/$/, "");
}
