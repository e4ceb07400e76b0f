// Keys: the list with prefix search and pages (GET /api/data), one key
// with its value as formatted JSON (GET /api/data/{key}), editing it with
// If-Match so that someone else's change is never overwritten unseen
// (PUT, 412), deleting it, and creating keys (POST).  A value is checked
// as JSON here before anything is sent; a TTL goes out as `ttl` and the
// key is read back to see whether the server kept it.
import * as api from './api.js';
import { ask, describe, field, fill, h, messageArea, when } from './dom.js';
import { go, notify } from './nav.js';
import { submitting } from './auth.js';

const TTL_MAX = 31_536_000;
const PAGE_SIZES = [10, 25, 50, 100];
// null: not seen yet; false: the server stored a key without the expiry
// asked for (no TTL support yet); true: it kept one.
let ttlSupported = null;

export function keyHash(key) {
  return `#/key/${encodeURIComponent(key)}`;
}

// The text of a value field as a JSON value, or an error in words.
export function parseValue(text) {
  if (text.trim() === '') return { error: 'Enter a JSON value, for example {"name": "Ada"}, [1, 2], 42 or "text".' };
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { error: `This is not valid JSON: ${e.message}. Nothing was sent.` };
  }
  if (value === null) return { error: 'The value cannot be null (the API stores any other JSON value). Nothing was sent.' };
  return { value };
}

// The TTL field: '' is no expiry.
function parseTtl(text) {
  const t = text.trim();
  if (t === '') return { ttl: undefined };
  const n = /^[0-9]+$/.test(t) ? Number(t) : NaN;
  if (!(n >= 1 && n <= TTL_MAX)) {
    return { error: `The TTL must be a whole number of seconds from 1 to ${TTL_MAX} (a year), or empty for no expiry.` };
  }
  return { ttl: n };
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

function preview(value) {
  const s = JSON.stringify(value);
  return s.length > 120 ? `${s.slice(0, 119)}…` : s;
}

// Mark a field invalid with a message under it, or clear it.
function invalid(input, text) {
  const id = `${input.id}-error`;
  input.closest('.field').querySelector('.field-error')?.remove();
  const described = (input.getAttribute('aria-describedby') ?? '').split(' ').filter((x) => x && x !== id);
  if (text) {
    input.setAttribute('aria-invalid', 'true');
    input.insertAdjacentElement('beforebegin', h('p', { class: 'field-error', id, role: 'alert' }, text));
    described.push(id);
  } else {
    input.removeAttribute('aria-invalid');
  }
  if (described.length) input.setAttribute('aria-describedby', described.join(' '));
  else input.removeAttribute('aria-describedby');
}

function ttlHint() {
  const base = 'Seconds until the key expires; empty for never.';
  return ttlSupported === false ? `${base} This server ignored TTLs so far: it keeps keys without expiry.` : base;
}

// After a write with a TTL: did the key come back with expires_at?
function noteTtl(ttl, data) {
  if (ttl === undefined) return null;
  ttlSupported = Boolean(data?.expires_at);
  return ttlSupported
    ? null
    : 'The server ignored the TTL: this server does not support expiry yet, so the key never expires.';
}

async function read(key) {
  const r = await api.call('GET', api.keyPath(key));
  return { data: r.data, etag: r.headers.get('ETag') };
}

// ---------------------------------------------------------------- list

// Where the list is: its query and the cursors of the pages seen; null
// starts again at page 1.
let pager = null;

export async function keysView(root, { query }) {
  const prefix = query.get('prefix') ?? '';
  const limit = PAGE_SIZES.includes(Number(query.get('limit'))) ? Number(query.get('limit')) : 25;
  if (!pager || pager.prefix !== prefix || pager.limit !== limit) pager = { prefix, limit, cursors: [null], page: 0 };

  const msg = messageArea();
  const prefixInput = h('input', {
    id: 'prefix',
    name: 'prefix',
    type: 'search',
    value: prefix,
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const limitSelect = h(
    'select',
    { id: 'limit', name: 'limit' },
    PAGE_SIZES.map((n) => h('option', { value: String(n), selected: n === limit }, String(n))),
  );
  const search = h(
    'form',
    {
      role: 'search',
      class: 'search',
      onsubmit: (ev) => {
        ev.preventDefault();
        const q = new URLSearchParams();
        if (prefixInput.value) q.set('prefix', prefixInput.value);
        if (limitSelect.value !== '25') q.set('limit', limitSelect.value);
        const s = q.toString();
        pager = null; // a search starts at page 1, even the same one
        go(`#/keys${s ? `?${s}` : ''}`);
      },
    },
    h('div', { class: 'field grow' }, h('label', { for: 'prefix' }, 'Keys starting with'), prefixInput),
    h('div', { class: 'field' }, h('label', { for: 'limit' }, 'Per page'), limitSelect),
    h('div', { class: 'field' }, h('button', { type: 'submit' }, 'Search')),
  );
  const status = h('p', { class: 'status', 'aria-live': 'polite' });
  const list = h('ul', { class: 'key-list', 'aria-label': 'Keys' });
  const prev = h('button', { type: 'button', class: 'secondary', id: 'prev-page' }, 'Previous page');
  const next = h('button', { type: 'button', class: 'secondary', id: 'next-page' }, 'Next page');
  const pages = h('nav', { class: 'pages', 'aria-label': 'Pages' }, prev, next);

  root.append(
    h(
      'div',
      { class: 'title-row' },
      h('h1', { tabindex: '-1' }, 'Your keys'),
      h('a', { class: 'button', href: '#/new' }, 'New key'),
    ),
    search,
    msg.el,
    status,
    list,
    pages,
  );

  async function load() {
    const q = new URLSearchParams({ limit: String(pager.limit) });
    if (pager.prefix) q.set('prefix', pager.prefix);
    const cursor = pager.cursors[pager.page];
    if (cursor) q.set('cursor', cursor);
    prev.disabled = next.disabled = true;
    let r;
    try {
      r = await api.call('GET', `/api/data?${q}`);
    } catch (e) {
      msg.error(e);
      fill(status, '');
      return;
    }
    msg.clear();
    const items = r.data?.items ?? [];
    pager.cursors[pager.page + 1] = r.data?.next_cursor ?? null;
    fill(
      list,
      items.map((it) =>
        h(
          'li',
          {},
          h('a', { href: keyHash(it.key), class: 'key' }, it.key),
          h('code', { class: 'preview' }, preview(it.value)),
        ),
      ),
    );
    const first = pager.page * pager.limit + 1;
    if (items.length === 0 && pager.page === 0) {
      fill(
        status,
        pager.prefix ? `No keys start with “${pager.prefix}”.` : 'No keys yet. Create one with “New key”.',
      );
    } else {
      fill(
        status,
        `Page ${pager.page + 1}: keys ${first} to ${first + items.length - 1}`,
        pager.prefix ? ` starting with “${pager.prefix}”` : '',
        r.data?.next_cursor ? '; more follow.' : '.',
      );
    }
    prev.disabled = pager.page === 0;
    next.disabled = !r.data?.next_cursor;
    pages.hidden = prev.disabled && next.disabled;
  }
  prev.addEventListener('click', () => {
    pager.page--;
    load().then(() => (prev.disabled ? next : prev).focus());
  });
  next.addEventListener('click', () => {
    pager.page++;
    load().then(() => (next.disabled ? prev : next).focus());
  });
  await load();
}

// ---------------------------------------------------------------- one key

export async function keyView(root, { arg: key, stale }) {
  if (key === null || key === '') {
    go('#/keys');
    return;
  }
  const msg = messageArea();
  const body = h('div', { class: 'key-body' });
  root.append(
    h('p', { class: 'crumb' }, h('a', { href: '#/keys' }, '← All keys')),
    h('h1', { tabindex: '-1', class: 'key-title' }, h('span', { class: 'visually-hidden' }, 'Key '), h('code', {}, key)),
    msg.el,
    body,
  );
  let state; // {data, etag}

  async function reload(note) {
    try {
      state = await read(key);
    } catch (e) {
      fill(body);
      msg.error(e);
      if (e.code === 'KEY_NOT_FOUND') body.append(h('p', {}, h('a', { href: '#/keys' }, 'Back to your keys')));
      return false;
    }
    if (note) msg.show(...note);
    else msg.clear();
    showValue();
    return true;
  }

  function showValue() {
    const { data, etag } = state;
    const meta = h(
      'dl',
      { class: 'meta' },
      h('dt', {}, 'Expires'),
      h('dd', {}, data.expires_at ? when(data.expires_at) : 'Never'),
      h('dt', {}, 'Version (ETag)'),
      h('dd', {}, h('code', {}, etag ?? '—')),
    );
    const edit = h('button', { type: 'button', id: 'edit', onclick: () => showEditor() }, 'Edit');
    fill(
      body,
      meta,
      h('h2', { class: 'visually-hidden' }, 'Value'),
      h('pre', { class: 'json', tabindex: '0', 'aria-label': 'Value as JSON' }, pretty(data.value)),
      h(
        'div',
        { class: 'actions' },
        edit,
        h('button', { type: 'button', class: 'secondary', onclick: () => reload(['ok', 'Reloaded.']) }, 'Reload'),
        h('button', { type: 'button', class: 'danger', id: 'delete', onclick: () => remove() }, 'Delete'),
      ),
    );
  }

  function showEditor(text) {
    const { data } = state;
    msg.clear();
    const left = data.expires_at ? Math.ceil((Date.parse(data.expires_at) - Date.now()) / 1000) : NaN;
    const formMsg = messageArea();
    const form = h(
      'form',
      { class: 'editor', 'aria-label': 'Edit the value' },
      field({
        label: 'Value (JSON)',
        name: 'value',
        type: 'textarea',
        value: text ?? pretty(data.value),
        rows: '14',
        hint: 'Any JSON value but null. It is checked before it is sent.',
      }),
      field({
        label: 'TTL in seconds (optional)',
        name: 'ttl',
        inputmode: 'numeric',
        value: left > 0 ? String(left) : '',
        hint: `${ttlHint()} Saving replaces the expiry.`,
      }),
      formMsg.el,
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'submit' }, 'Save'),
        h('button', { type: 'button', class: 'secondary', onclick: () => showValue() }, 'Cancel'),
      ),
    );
    const ta = form.elements.value;
    const ttlInput = form.elements.ttl;
    submitting(form, formMsg, async () => {
      const v = parseValue(ta.value);
      invalid(ta, v.error);
      const t = parseTtl(ttlInput.value);
      invalid(ttlInput, t.error);
      if (v.error || t.error) {
        (v.error ? ta : ttlInput).focus();
        return;
      }
      await save(v.value, t.ttl, ta.value, state.etag);
    });
    fill(body, form);
    ta.focus();
  }

  // PUT with If-Match; on 412 ask whether to reload or overwrite.
  async function save(value, ttl, text, etag) {
    const payload = ttl === undefined ? { value } : { value, ttl };
    try {
      const r = await api.call('PUT', api.keyPath(key), { body: payload, ifMatch: etag });
      state = await read(key);
      if (stale()) return;
      const warn = noteTtl(ttl, state.data);
      msg.show(warn ? 'warn' : 'ok', r.message, warn ? ` ${warn}` : '');
      showValue();
      body.querySelector('#edit')?.focus();
    } catch (e) {
      if (e.code !== 'PRECONDITION_FAILED') throw e;
      const choice = await ask(
        'Someone else changed this key',
        [
          h('p', {}, describe(e)),
          h(
            'p',
            {},
            'It was changed after you opened it. Reload it to see the current value (your edit is dropped), ' +
              'or overwrite it with yours.',
          ),
        ],
        [
          { label: 'Reload the current value', value: 'reload' },
          { label: 'Overwrite with mine', value: 'overwrite', kind: 'danger' },
          { label: 'Keep editing', value: 'keep', kind: 'secondary' },
        ],
      );
      if (choice === 'reload') {
        if (await reload(['info', 'Reloaded the current value; your edit was dropped.'])) body.querySelector('#edit')?.focus();
      } else if (choice === 'overwrite') {
        // Overwrite the version now there, and only that one.
        const now = await read(key);
        await save(value, ttl, text, now.etag);
      } else {
        body.querySelector('textarea')?.focus();
      }
    }
  }

  async function remove(force) {
    const ok = await ask(
      force ? 'Delete anyway?' : 'Delete this key?',
      h('p', {}, '“', h('code', {}, key), '” and its value will be deleted. This cannot be undone.'),
      [
        { label: 'Cancel', value: 'cancel', kind: 'secondary' },
        { label: 'Delete', value: 'delete', kind: 'danger' },
      ],
    );
    if (ok !== 'delete') {
      body.querySelector('#delete')?.focus();
      return;
    }
    try {
      const r = await api.call('DELETE', api.keyPath(key), { ifMatch: force ? undefined : state.etag });
      notify('ok', `${r.message} (“${key}”)`);
      go('#/keys');
    } catch (e) {
      if (e.code !== 'PRECONDITION_FAILED') {
        msg.error(e);
        return;
      }
      const choice = await ask(
        'Someone else changed this key',
        [h('p', {}, describe(e)), h('p', {}, 'It was changed after you opened it.')],
        [
          { label: 'Reload the current value', value: 'reload' },
          { label: 'Delete it anyway', value: 'delete', kind: 'danger' },
        ],
      );
      if (choice === 'reload') await reload(['info', 'Reloaded the current value.']);
      else if (choice === 'delete') await remove(true);
    }
  }

  await reload();
}

// ---------------------------------------------------------------- new key

export function newKeyView(root) {
  const msg = messageArea();
  const form = h(
    'form',
    { class: 'editor', 'aria-labelledby': 'new-title' },
    field({
      label: 'Key',
      name: 'key',
      required: true,
      autocomplete: 'off',
      spellcheck: 'false',
      maxlength: '255',
      hint: 'Up to 255 bytes of text; “/”, spaces and any other characters are fine.',
    }),
    field({
      label: 'Value (JSON)',
      name: 'value',
      type: 'textarea',
      rows: '10',
      placeholder: '{"name": "Ada"}',
      hint: 'Any JSON value but null. It is checked before it is sent.',
    }),
    field({ label: 'TTL in seconds (optional)', name: 'ttl', inputmode: 'numeric', hint: ttlHint() }),
    msg.el,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create')),
  );
  const { key, value, ttl } = form.elements;
  submitting(form, msg, async () => {
    const v = parseValue(value.value);
    invalid(value, v.error);
    const t = parseTtl(ttl.value);
    invalid(ttl, t.error);
    if (v.error || t.error) {
      (v.error ? value : ttl).focus();
      return;
    }
    const body = t.ttl === undefined ? { key: key.value, value: v.value } : { key: key.value, value: v.value, ttl: t.ttl };
    let r;
    try {
      r = await api.call('POST', '/api/data', { body });
    } catch (e) {
      if (e.code === 'KEY_EXISTS') {
        msg.show('error', describe(e), ' ', h('a', { href: keyHash(key.value) }, 'Open the existing key'), '.');
        return;
      }
      throw e;
    }
    let warn = null;
    if (t.ttl !== undefined) warn = noteTtl(t.ttl, (await read(key.value)).data);
    notify(warn ? 'warn' : 'ok', `${r.message}${warn ? ` ${warn}` : ''}`);
    go(keyHash(key.value));
  });
  root.append(h('h1', { id: 'new-title', tabindex: '-1' }, 'New key'), form);
}
