// The console's only way to the API: every request goes through call(),
// which sends JSON, adds the access token, and turns every answer that is
// not a success into an ApiError carrying the API's own code and message,
// so that no view can swallow one.  It also keeps the login: the access
// token in this module's memory only, the refresh token (when the server
// issues one) in sessionStorage, rotated before the access token expires
// (docs/decisions.md, "Web console").

const REFRESH_KEY = 'kvapi.refresh';
// Rotate this long before the access token expires (or at 80 % of its
// lifetime, for short ones).
const ROTATE_EARLY_MS = 60_000;

export class ApiError extends Error {
  constructor(status, code, message, data) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.data = data;
  }
}

// Whether the token answer carried a refresh token (null until a login):
// without one there is nothing to rotate or keep (API.md promises one).
export const features = {
  refresh: null,
};

let access = null; // {token, expiresAt}
let username = null;
let rotateTimer = 0;
let rotating = null; // the refresh in flight, shared by all callers
const ended = new Set(); // listeners: the login ended (reason text)
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('kvapi-session') : null;

export function onSessionEnd(fn) {
  ended.add(fn);
}

export function loggedIn() {
  return access !== null;
}

export function currentUser() {
  return username;
}

// The refresh token of this tab's login: {refresh_token, session_id,
// username} or null.
function stored() {
  try {
    const v = JSON.parse(sessionStorage.getItem(REFRESH_KEY));
    return v && typeof v.refresh_token === 'string' ? v : null;
  } catch {
    return null;
  }
}

function store(v) {
  try {
    if (v) sessionStorage.setItem(REFRESH_KEY, JSON.stringify(v));
    else sessionStorage.removeItem(REFRESH_KEY);
  } catch {
    // Storage disabled: the login lasts until the page is left.
  }
}

export function sessionId() {
  return stored()?.session_id ?? null;
}

// A duplicated tab starts with a copy of this tab's sessionStorage, so
// both hold the same refresh token; whichever rotates tells the other,
// which would otherwise present a consumed token and so end the session
// for both (API.md, refresh token reuse).
channel?.addEventListener('message', (ev) => {
  const mine = stored();
  const m = ev.data;
  if (!mine || !m || m.session_id !== mine.session_id) return;
  if (m.type === 'rotated') store({ ...mine, refresh_token: m.refresh_token });
  if (m.type === 'ended') finish('You were logged out in another tab.', false, 'info');
});

// Take the data of a token answer (login or refresh).
function adopt(data, user) {
  const life = Number(data.expires_in) > 0 ? Number(data.expires_in) * 1000 : 3_600_000;
  access = { token: data.access_token, expiresAt: Date.now() + life };
  username = user;
  features.refresh = typeof data.refresh_token === 'string';
  clearTimeout(rotateTimer);
  if (features.refresh) {
    const prev = stored();
    const next = {
      refresh_token: data.refresh_token,
      session_id: data.session_id ?? prev?.session_id ?? null,
      username: user,
    };
    store(next);
    if (prev && prev.session_id === next.session_id) {
      channel?.postMessage({ type: 'rotated', session_id: next.session_id, refresh_token: next.refresh_token });
    }
    const early = Math.min(ROTATE_EARLY_MS, life * 0.2);
    rotateTimer = setTimeout(() => {
      rotate().catch(() => {});
    }, life - early);
  } else {
    store(null);
  }
}

// Forget the login and tell the views why (kind: how the message shows,
// 'ok', 'info' or 'warn').
function finish(reason, broadcast, kind = 'warn') {
  const sid = stored()?.session_id;
  clearTimeout(rotateTimer);
  access = null;
  username = null;
  store(null);
  if (broadcast && sid) channel?.postMessage({ type: 'ended', session_id: sid });
  for (const fn of ended) fn(reason, kind);
}

// Rotate the refresh token: a new access token and a new refresh token.
// Resolves true when logged in again; on INVALID_GRANT (expired, revoked,
// or reused) the login ends.
function rotate() {
  const st = stored();
  if (!st) return Promise.resolve(false);
  rotating ??= call('POST', '/api/token', {
    auth: false,
    body: { grant_type: 'refresh_token', refresh_token: st.refresh_token },
  })
    .then((r) => {
      adopt(r.data, st.username);
      return true;
    })
    .catch((e) => {
      // A network failure keeps the token for a later try.
      if (e.status === 0) throw e;
      finish(`Your session has ended: ${e.message}`, false);
      return false;
    })
    .finally(() => {
      rotating = null;
    });
  return rotating;
}

// At start: a refresh token kept in this tab logs in again.
export async function resume() {
  if (!stored()) return false;
  return rotate();
}

export async function login(user, password) {
  const r = await call('POST', '/api/token', { auth: false, body: { username: user, password } });
  adopt(r.data, user);
  return r;
}

export async function logout() {
  try {
    if (access) await call('DELETE', '/api/token', { retry: false });
  } finally {
    finish('You are logged out.', true, 'ok');
  }
}

// The login ended on the server (account deleted, session revoked).
export function forget(reason) {
  finish(reason, true, 'ok');
}

// One API request.  opts: body (sent as JSON), ifMatch, auth (default
// true), retry (once with a rotated token after 401 INVALID_TOKEN).
// Resolves {status, headers, json, data, message}; rejects with ApiError.
export async function call(method, path, opts = {}) {
  const { body, ifMatch, auth = true, retry = true } = opts;
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (ifMatch) headers['If-Match'] = ifMatch;
  if (auth) {
    if (access && features.refresh && Date.now() > access.expiresAt - 5_000) await rotate().catch(() => {});
    if (!access) throw new ApiError(401, 'NOT_LOGGED_IN', 'You are not logged in.');
    headers.Authorization = `Bearer ${access.token}`;
  }
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'NETWORK_ERROR', 'The server could not be reached. Check the connection and try again.');
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (res.ok) return { status: res.status, headers: res.headers, json, data: json?.data, message: json?.message };

  const code = typeof json?.code === 'string' ? json.code : `HTTP_${res.status}`;
  const message =
    typeof json?.message === 'string'
      ? json.message
      : `The server answered ${res.status} ${res.statusText} without an explanation.`;
  if (auth && res.status === 401 && code === 'INVALID_TOKEN') {
    if (retry && features.refresh && (await rotate().catch(() => false))) {
      return call(method, path, { ...opts, retry: false });
    }
    if (access) finish(`Your session has ended: ${message}`, false);
  }
  throw new ApiError(res.status, code, message, json?.data);
}

// The URL path of a key: its UTF-8 bytes percent-encoded, "/" included.
// A browser resolves a path segment "." or ".." (even as %2E) before
// sending, so those two keys cannot be reached from here.
export function keyPath(key) {
  if (key === '.' || key === '..') {
    throw new ApiError(0, 'KEY_UNREACHABLE', `A browser cannot address the key "${key}": URLs treat it as a path step.`);
  }
  return `/api/data/${encodeURIComponent(key)}`;
}
