// Logging in and registering (POST /api/token, POST /api/register).
import * as api from './api.js';
import { field, h, messageArea } from './dom.js';
import { go, loggedInNow, notify } from './nav.js';

// Run an async form action with its submit button disabled, showing any
// error in the form's message area.
export function submitting(form, msg, action) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const buttons = form.querySelectorAll('button');
    for (const b of buttons) b.disabled = true;
    form.setAttribute('aria-busy', 'true');
    msg.clear();
    try {
      await action(new FormData(form));
    } catch (e) {
      msg.error(e);
    } finally {
      for (const b of buttons) b.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
}

export function loginView(root) {
  const msg = messageArea();
  const form = h(
    'form',
    { class: 'card narrow', 'aria-labelledby': 'login-title' },
    field({ label: 'Username', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none' }),
    field({ label: 'Password', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    msg.el,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Log in')),
    h('p', {}, 'New here? ', h('a', { href: '#/register' }, 'Create an account'), '.'),
  );
  submitting(form, msg, async (d) => {
    await api.login(d.get('username'), d.get('password'));
    loggedInNow();
  });
  root.append(
    h('h1', { id: 'login-title', tabindex: '-1' }, 'Log in'),
    h('p', { class: 'lead' }, 'Store and browse JSON values by key.'),
    form,
  );
}

export function registerView(root) {
  const msg = messageArea();
  const form = h(
    'form',
    { class: 'card narrow', 'aria-labelledby': 'register-title' },
    field({
      label: 'Username',
      name: 'username',
      autocomplete: 'username',
      required: true,
      autocapitalize: 'none',
      hint: '3 to 64 letters, digits, “_”, “.” or “-”.',
    }),
    field({ label: 'Email', name: 'email', type: 'email', autocomplete: 'email', required: true }),
    field({ label: 'Full name', name: 'full_name', autocomplete: 'name', required: true }),
    field({
      label: 'Password',
      name: 'password',
      type: 'password',
      autocomplete: 'new-password',
      required: true,
      hint: '8 characters at least, 72 bytes at most.',
    }),
    field({ label: 'Age (optional)', name: 'age', type: 'number', inputmode: 'numeric', min: '1', max: '150' }),
    field({ label: 'Gender (optional)', name: 'gender', maxlength: '32' }),
    msg.el,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create account')),
    h('p', {}, 'Have an account? ', h('a', { href: '#/login' }, 'Log in'), '.'),
  );
  submitting(form, msg, async (d) => {
    const body = {
      username: d.get('username'),
      email: d.get('email'),
      full_name: d.get('full_name'),
      password: d.get('password'),
    };
    if (d.get('age') !== '') body.age = Number(d.get('age'));
    if (d.get('gender') !== '') body.gender = d.get('gender');
    const r = await api.call('POST', '/api/register', { auth: false, body });
    try {
      await api.login(body.username, body.password);
    } catch (e) {
      // The account exists all the same: say so, and why the login failed.
      notify('warn', `${r.message} Logging in failed: ${e.message} Please log in.`);
      go('#/login');
      return;
    }
    notify('ok', `${r.message} Welcome, ${r.data?.username ?? body.username}.`);
    loggedInNow();
  });
  root.append(h('h1', { id: 'register-title', tabindex: '-1' }, 'Create an account'), form);
}
