// The account: this login, the profile with usage against quota
// (GET/PATCH /api/users/me), the password (PUT /api/users/me/password),
// the sessions (GET/DELETE /api/sessions) and deleting the account
// (DELETE /api/users/me).  Each section shows the API's own error when
// its request fails.
import * as api from './api.js';
import { ask, bytes, field, fill, h, messageArea, when } from './dom.js';
import { submitting } from './auth.js';

function section(id, title, ...content) {
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...content);
}

export async function accountView(root, { stale }) {
  const loginSec = section(
    'acct-login',
    'This login',
    h(
      'dl',
      { class: 'meta' },
      h('dt', {}, 'Username'),
      h('dd', {}, api.currentUser() ?? '—'),
      h('dt', {}, 'Staying logged in'),
      h(
        'dd',
        {},
        api.features.refresh
          ? 'A refresh token keeps this tab logged in across reloads until you log out or close the tab.'
          : 'This server issues no refresh tokens: reloading the page or leaving it logs you out.',
      ),
    ),
  );
  const profile = h('div');
  const sessions = h('div');
  const password = h('div');
  const danger = h('div');
  root.append(
    h('h1', { tabindex: '-1' }, 'Account'),
    loginSec,
    section('acct-profile', 'Profile and usage', profile),
    section('acct-password', 'Change password', password),
    section('acct-sessions', 'Sessions', sessions),
    section('acct-delete', 'Delete account', danger),
  );

  let me = null;
  try {
    me = (await api.call('GET', '/api/users/me')).data;
  } catch (e) {
    const msg = messageArea();
    fill(profile, msg.el);
    msg.error(e);
  }
  if (stale()) return;
  if (me) renderProfile(profile, me);
  renderPassword(password);
  renderDelete(danger);
  await renderSessions(sessions);
}

function renderProfile(el, me, note) {
  const usage = (label, id, used, max, fmt) =>
    h(
      'div',
      { class: 'usage' },
      h('label', { for: id }, `${label}: ${fmt(used)} of ${fmt(max)}`),
      h('meter', { id, min: '0', max: String(max ?? 0), value: String(used ?? 0), high: String((max ?? 0) * 0.9) }),
    );
  const num = (n) => (Number.isFinite(n) ? n.toLocaleString() : '?');
  const msg = messageArea();
  const form = h(
    'form',
    { class: 'editor', 'aria-label': 'Edit the profile' },
    field({ label: 'Email', name: 'email', type: 'email', value: me.email ?? '', required: true }),
    field({ label: 'Full name', name: 'full_name', value: me.full_name ?? '', required: true }),
    field({
      label: 'Age (optional)',
      name: 'age',
      type: 'number',
      min: '1',
      max: '150',
      value: me.age ?? '',
      hint: 'Empty clears it.',
    }),
    field({ label: 'Gender (optional)', name: 'gender', value: me.gender ?? '', hint: 'Empty clears it.' }),
    msg.el,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save profile')),
  );
  submitting(form, msg, async (d) => {
    const patch = {};
    for (const k of ['email', 'full_name']) if (d.get(k) !== (me[k] ?? '')) patch[k] = d.get(k);
    const age = d.get('age') === '' ? null : Number(d.get('age'));
    if (age !== (me.age ?? null)) patch.age = age;
    const gender = d.get('gender') === '' ? null : d.get('gender');
    if (gender !== (me.gender ?? null)) patch.gender = gender;
    const r = await api.call('PATCH', '/api/users/me', { body: patch });
    renderProfile(el, r.data ?? me, r.message);
  });
  fill(
    el,
    h(
      'dl',
      { class: 'meta' },
      h('dt', {}, 'Username'),
      h('dd', {}, me.username),
      h('dt', {}, 'Member since'),
      h('dd', {}, when(me.created_at)),
    ),
    usage('Keys', 'usage-keys', me.usage?.keys, me.quota?.keys, num),
    usage('Storage', 'usage-bytes', me.usage?.bytes, me.quota?.bytes, bytes),
    form,
  );
  if (note) msg.show('ok', note);
}

function renderPassword(el) {
  const msg = messageArea();
  const form = h(
    'form',
    { 'aria-label': 'Change password' },
    h(
      'fieldset',
      {},
      h('legend', { class: 'visually-hidden' }, 'Passwords'),
      field({
        label: 'Current password',
        name: 'current_password',
        type: 'password',
        autocomplete: 'current-password',
        required: true,
      }),
      field({
        label: 'New password',
        name: 'new_password',
        type: 'password',
        autocomplete: 'new-password',
        required: true,
        hint: '8 characters at least, 72 bytes at most. Your other sessions end.',
      }),
      field({
        label: 'New password again',
        name: 'confirm',
        type: 'password',
        autocomplete: 'new-password',
        required: true,
      }),
      msg.el,
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Change password')),
    ),
  );
  submitting(form, msg, async (d) => {
    if (d.get('new_password') !== d.get('confirm')) {
      msg.show('error', 'The two new passwords differ. Nothing was sent.');
      return;
    }
    const r = await api.call('PUT', '/api/users/me/password', {
      body: { current_password: d.get('current_password'), new_password: d.get('new_password') },
    });
    form.reset();
    msg.show('ok', r.message, ' Your other sessions were ended.');
  });
  fill(el, form);
}

async function renderSessions(el, note) {
  const msg = messageArea();
  let items;
  try {
    items = (await api.call('GET', '/api/sessions')).data?.items ?? [];
  } catch (e) {
    fill(el, msg.el);
    msg.error(e);
    return;
  }
  const list = h(
    'ul',
    { class: 'sessions' },
    items.map((s) =>
      h(
        'li',
        { 'data-session-id': s.session_id },
        h(
          'p',
          { class: 'session-title' },
          h('strong', {}, s.user_agent || 'Unknown browser'),
          s.current ? h('span', { class: 'badge' }, 'this session') : null,
        ),
        h(
          'p',
          { class: 'hint' },
          `Started ${when(s.created_at)}, ${s.refreshed_at ? `last refreshed ${when(s.refreshed_at)}` : 'not refreshed yet'}, expires ${when(s.expires_at)}.`,
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'secondary',
            onclick: async () => {
              const ok = await ask(
                s.current ? 'End this session?' : 'Revoke this session?',
                h('p', {}, s.current ? 'You will be logged out here.' : 'That browser will be logged out.'),
                [
                  { label: 'Cancel', value: 'cancel', kind: 'secondary' },
                  { label: s.current ? 'End it' : 'Revoke', value: 'yes', kind: 'danger' },
                ],
              );
              if (ok !== 'yes') return;
              try {
                const r = await api.call('DELETE', `/api/sessions/${encodeURIComponent(s.session_id)}`);
                if (s.current) api.forget(r.message);
                else await renderSessions(el, r.message);
              } catch (e) {
                msg.error(e);
              }
            },
          },
          s.current ? 'End this session' : 'Revoke',
        ),
      ),
    ),
  );
  const others = items.filter((s) => !s.current).length;
  fill(
    el,
    items.length ? list : h('p', {}, 'No live sessions.'),
    msg.el,
    others
      ? h(
          'div',
          { class: 'actions' },
          h(
            'button',
            {
              type: 'button',
              class: 'danger',
              onclick: async () => {
                try {
                  const r = await api.call('DELETE', '/api/sessions');
                  await renderSessions(el, `${r.message} (${r.data?.revoked ?? 0} ended)`);
                } catch (e) {
                  msg.error(e);
                }
              },
            },
            'Log out all other sessions',
          ),
        )
      : null,
  );
  if (note) msg.show('ok', note);
}

function renderDelete(el) {
  const msg = messageArea();
  const form = h(
    'form',
    { 'aria-label': 'Delete account' },
    h(
      'fieldset',
      {},
      h('legend', { class: 'visually-hidden' }, 'Confirm with your password'),
      h('p', {}, 'Your account, every key and every session go at once. This cannot be undone.'),
      field({ label: 'Password', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
      msg.el,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'danger' }, 'Delete my account')),
    ),
  );
  submitting(form, msg, async (d) => {
    const ok = await ask(
      'Delete your account?',
      h('p', {}, `“${api.currentUser()}”, all its keys and sessions will be deleted. This cannot be undone.`),
      [
        { label: 'Cancel', value: 'cancel', kind: 'secondary' },
        { label: 'Delete everything', value: 'yes', kind: 'danger' },
      ],
    );
    if (ok !== 'yes') return;
    const r = await api.call('DELETE', '/api/users/me', { body: { password: d.get('password') } });
    api.forget(r.message);
  });
  fill(el, form);
}
