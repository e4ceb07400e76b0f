// The console's API client (www/ui/api.js) against a fake server that
// speaks API.md's "Accounts and sessions": refresh-token rotation, reuse
// detection, logout.  The real server does not issue refresh tokens yet,
// so t/88-console.t's browser journey cannot reach these paths; this file
// holds them to the contract meanwhile.  Run by t/88-console.t:
//
//     node t/console/api.test.mjs          (exit status 0: all passed)
import assert from 'node:assert/strict';
import test from 'node:test';

// ---- what a browser tab would give the module

class Storage {
  constructor() {
    this.m = new Map();
  }
  getItem(k) {
    return this.m.has(k) ? this.m.get(k) : null;
  }
  setItem(k, v) {
    this.m.set(k, String(v));
  }
  removeItem(k) {
    this.m.delete(k);
  }
}
globalThis.sessionStorage = new Storage();
// Node keeps the process alive while a channel is open; a browser tab
// closes it when it goes.
const Channel = globalThis.BroadcastChannel;
globalThis.BroadcastChannel = class extends Channel {
  constructor(name) {
    super(name);
    this.unref?.();
  }
};

// ---- the fake server

const server = {
  refresh: true, // issue refresh tokens
  lifetime: 3600,
  access: new Map(), // token -> session id
  refreshTokens: new Map(), // token -> {sid, used}
  ended: new Set(), // session ids
  calls: [],
  seq: 0,
  sessions: 0,
  reset() {
    Object.assign(this, { refresh: true, lifetime: 3600, calls: [], seq: 0, sessions: 0 });
    this.access.clear();
    this.refreshTokens.clear();
    this.ended.clear();
  },
  mint(sid) {
    const access = `a${++this.seq}`;
    this.access.set(access, sid);
    const data = { access_token: access, token_type: 'Bearer', expires_in: this.lifetime };
    if (this.refresh) {
      const rt = `r${this.seq}`;
      this.refreshTokens.set(rt, { sid, used: false });
      Object.assign(data, { refresh_token: rt, refresh_expires_in: 2592000, session_id: sid });
    }
    return data;
  },
};

function answer(status, body) {
  return new Response(body === undefined ? '' : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json; charset=utf-8' },
  });
}
const err = (status, code, message) => answer(status, { status: 'error', code, message });
const invalidToken = () => err(401, 'INVALID_TOKEN', 'Invalid access token provided.');

globalThis.fetch = async (path, init = {}) => {
  const method = init.method ?? 'GET';
  const body = init.body ? JSON.parse(init.body) : undefined;
  const auth = init.headers?.Authorization?.replace(/^Bearer /, '');
  server.calls.push({ method, path, body, auth });
  const sidOf = (t) => {
    const sid = server.access.get(t);
    return sid && !server.ended.has(sid) ? sid : null;
  };
  if (path === '/api/token' && method === 'POST') {
    if (body.grant_type === 'refresh_token') {
      const rt = server.refreshTokens.get(body.refresh_token);
      if (!rt || server.ended.has(rt.sid)) return err(401, 'INVALID_GRANT', 'The refresh token is not valid.');
      if (rt.used) {
        // Reuse: the whole session ends (API.md, refresh token reuse).
        server.ended.add(rt.sid);
        return err(401, 'INVALID_GRANT', 'The refresh token is not valid.');
      }
      rt.used = true;
      return answer(200, { status: 'success', message: 'Access token generated successfully.', data: server.mint(rt.sid) });
    }
    if (body.password !== 'right password') {
      return err(401, 'INVALID_CREDENTIALS', 'Invalid credentials. The provided username or password is incorrect.');
    }
    const sid = `s${++server.sessions}`;
    return answer(200, { status: 'success', message: 'Access token generated successfully.', data: server.mint(sid) });
  }
  if (path === '/api/token' && method === 'DELETE') {
    const sid = sidOf(auth);
    if (!sid) return invalidToken();
    server.ended.add(sid);
    return answer(200, { status: 'success', message: 'Access token revoked.' });
  }
  if (path.startsWith('/api/data')) {
    if (!sidOf(auth)) return invalidToken();
    return answer(200, { status: 'success', data: { items: [], next_cursor: null } });
  }
  if (path === '/api/bad-gateway') return new Response('<html>502</html>', { status: 502, statusText: 'Bad Gateway' });
  return err(404, 'NOT_FOUND', 'The requested resource does not exist.');
};

// A fresh copy of the module: a tab just loaded (sessionStorage kept).
let tabs = 0;
const open = [];
async function tab() {
  const api = await import(`../../www/ui/api.js?tab=${++tabs}`);
  const ends = [];
  api.onSessionEnd((reason, kind) => ends.push({ reason, kind }));
  open.push(api);
  return { api, ends };
}

// A test that failed half-way leaves no rotation timer behind.
test.afterEach(() => {
  for (const api of open.splice(0)) if (api.loggedIn()) api.forget('test over');
});

const stored = () => JSON.parse(sessionStorage.getItem('kvapi.refresh'));

test.beforeEach(() => {
  server.reset();
  sessionStorage.m.clear();
});

test('a server without refresh tokens: nothing is stored, a reload is logged out', async () => {
  server.refresh = false;
  const { api } = await tab();
  await api.login('ada', 'right password');
  assert.equal(api.loggedIn(), true);
  assert.equal(api.features.refresh, false);
  assert.equal(sessionStorage.getItem('kvapi.refresh'), null);
  const reloaded = await tab();
  assert.equal(await reloaded.api.resume(), false);
  assert.equal(reloaded.api.loggedIn(), false);
  await api.logout();
});

test('with refresh tokens: only the refresh token is stored, and a reload resumes', async () => {
  const { api } = await tab();
  await api.login('ada', 'right password');
  assert.equal(api.features.refresh, true);
  assert.deepEqual(stored(), { refresh_token: 'r1', session_id: 's1', username: 'ada' });
  assert.ok(!sessionStorage.getItem('kvapi.refresh').includes('a1'), 'no access token in storage');

  // The page again, with the tab's sessionStorage.
  const reloaded = await tab();
  assert.equal(await reloaded.api.resume(), true);
  assert.equal(reloaded.api.currentUser(), 'ada');
  const last = server.calls.at(-1);
  assert.deepEqual(last.body, { grant_type: 'refresh_token', refresh_token: 'r1' });
  assert.equal(stored().refresh_token, 'r2', 'the rotated token replaces the old one');
  await reloaded.api.call('GET', '/api/data');
  assert.equal(server.calls.at(-1).auth, 'a2');
  await reloaded.api.logout();
});

test('a 401 INVALID_TOKEN rotates once and retries the request', async () => {
  const { api } = await tab();
  await api.login('ada', 'right password');
  server.access.delete('a1'); // the access token expired on the server
  const r = await api.call('GET', '/api/data');
  assert.equal(r.status, 200);
  const paths = server.calls.map((c) => `${c.method} ${c.path} ${c.auth ?? c.body?.grant_type ?? ''}`);
  assert.deepEqual(paths.slice(-3), ['GET /api/data a1', 'POST /api/token refresh_token', 'GET /api/data a2']);
  await api.logout();
});

test('the refresh token rotates before the access token expires', async () => {
  server.lifetime = 1; // rotation due at 80 % of a second
  const { api } = await tab();
  await api.login('ada', 'right password');
  await new Promise((r) => setTimeout(r, 1200));
  assert.ok(server.calls.some((c) => c.body?.grant_type === 'refresh_token'), 'a refresh was sent');
  assert.equal(stored().refresh_token, 'r2');
  server.lifetime = 3600;
  await new Promise((r) => setTimeout(r, 900)); // the next, 1 s rotation
  await api.logout();
});

test('INVALID_GRANT ends the login, with the API message', async () => {
  const { api, ends } = await tab();
  await api.login('ada', 'right password');
  server.refreshTokens.get('r1').used = true; // someone else used it
  server.access.delete('a1');
  await assert.rejects(api.call('GET', '/api/data'), { code: 'INVALID_TOKEN' });
  assert.equal(api.loggedIn(), false);
  assert.equal(sessionStorage.getItem('kvapi.refresh'), null);
  assert.deepEqual(ends, [{ reason: 'Your session has ended: The refresh token is not valid.', kind: 'warn' }]);
  assert.ok(server.ended.has('s1'), 'the reuse ended the session on the server');
});

test('logout revokes the token and forgets the refresh token', async () => {
  const { api, ends } = await tab();
  await api.login('ada', 'right password');
  await api.logout();
  assert.deepEqual(server.calls.at(-1), { method: 'DELETE', path: '/api/token', body: undefined, auth: 'a1' });
  assert.equal(api.loggedIn(), false);
  assert.equal(sessionStorage.getItem('kvapi.refresh'), null);
  assert.deepEqual(ends, [{ reason: 'You are logged out.', kind: 'ok' }]);
});

test('errors keep the API words, or say what happened', async () => {
  const { api } = await tab();
  await assert.rejects(api.login('ada', 'wrong'), {
    status: 401,
    code: 'INVALID_CREDENTIALS',
    message: 'Invalid credentials. The provided username or password is incorrect.',
  });
  await assert.rejects(api.call('GET', '/api/bad-gateway', { auth: false }), {
    status: 502,
    code: 'HTTP_502',
    message: 'The server answered 502 Bad Gateway without an explanation.',
  });
  const real = globalThis.fetch;
  globalThis.fetch = async () => {
    throw new TypeError('Failed to fetch');
  };
  try {
    await assert.rejects(api.call('GET', '/api/health', { auth: false }), { status: 0, code: 'NETWORK_ERROR' });
  } finally {
    globalThis.fetch = real;
  }
  await assert.rejects(api.call('GET', '/api/data'), { code: 'NOT_LOGGED_IN' });
});

test('key paths: one percent-encoded segment; . and .. refused', async () => {
  const { api } = await tab();
  assert.equal(api.keyPath('a/b c?#%é'), '/api/data/a%2Fb%20c%3F%23%25%C3%A9');
  assert.throws(() => api.keyPath('..'), { code: 'KEY_UNREACHABLE' });
  assert.throws(() => api.keyPath('.'), { code: 'KEY_UNREACHABLE' });
  assert.equal(api.keyPath('...'), '/api/data/...');
});
