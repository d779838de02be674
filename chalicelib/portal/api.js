// The portal's one door to Herald's JSON API: the token, the API's root, its errors.
// The token lives in this module's variable and in sessionStorage (this tab only), never in the URL.

const TOKEN_KEY = "herald-portal-token";
let token = null;

/** Takes the token from the URL's fragment (where the portal link puts it) and removes it
 * from the address bar, so it is not bookmarked, shared or shown; a reload finds it in
 * this tab's sessionStorage. */
export function takeToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("token");
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given);
    history.replaceState(null, "", location.pathname + location.search + "#handlers");
  }
  token = sessionStorage.getItem(TOKEN_KEY);
  return token !== null;
}

export function forgetToken() {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The API's root: the page is served at <root>/portal, whatever the stage's base path. */
const root = new URL(".", location.href);

export class ApiError extends Error {
  constructor(status, errors) {
    super(errors.map((e) => e.detail || e.title).join("; ") || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

/** Sent to the page when the token is refused (expired or invalid). */
export const unauthorized = new EventTarget();

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(new URL(path, root), init);
  if (response.status === 204) return null;
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const errors = Array.isArray(answer.errors) ? answer.errors : [{ detail: answer.error || `HTTP ${response.status}` }];
    const error = new ApiError(response.status, errors);
    if (response.status === 401) unauthorized.dispatchEvent(new CustomEvent("refused", { detail: error.message }));
    throw error;
  }
  return answer;
}

/** Every page of a paged list (1,000 a request), for lists the page filters itself. */
export async function everyPage(path) {
  const items = [];
  for (let page = 1; ; page++) {
    const answer = await api("GET", `${path}${path.includes("?") ? "&" : "?"}page=${page}&results_per_page=1000`);
    items.push(...answer.data);
    if (answer.data.length === 0 || items.length >= answer.meta.total) return items;
  }
}
