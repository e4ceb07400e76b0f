// The console's entry point: the header, the hash router (#/keys,
// #/key/<key>, #/new, #/account, #/login, #/register) and the messages
// that outlive a change of view.  Views live in auth.js, keys.js and
// account.js; each renders into the view element and never talks to the
// API but through api.js.
import * as api from './api.js';
import { fill, h, messageArea } from './dom.js';
import { loginView, registerView } from './auth.js';
import { keysView, keyView, newKeyView } from './keys.js';
import { accountView } from './account.js';
import { go, hasNotice, notify, returnAfterLogin, takeNotice } from './nav.js';

const views = {
  login: { render: loginView, public: true },
  register: { render: registerView, public: true },
  keys: { render: keysView },
  key: { render: keyView },
  new: { render: newKeyView },
  account: { render: accountView },
};

const viewEl = document.getElementById('view');
const navEl = document.getElementById('nav');
const flash = messageArea();
document.getElementById('flash').append(flash.el);
function parse() {
  const raw = location.hash.startsWith('#/') ? location.hash.slice(2) : '';
  const [path, query = ''] = raw.split('?');
  const [name, ...rest] = path.split('/');
  let arg = null;
  try {
    arg = rest.length ? decodeURIComponent(rest.join('/')) : null;
  } catch {
    arg = null;
  }
  return { name: name || (api.loggedIn() ? 'keys' : 'login'), arg, query: new URLSearchParams(query) };
}

function renderNav() {
  if (!api.loggedIn()) {
    fill(
      navEl,
      h('a', { href: '#/login' }, 'Log in'),
      h('a', { href: '#/register' }, 'Register'),
      h('a', { href: '/docs' }, 'API docs'),
    );
    return;
  }
  fill(
    navEl,
    h('a', { href: '#/keys' }, 'Keys'),
    h('a', { href: '#/new' }, 'New key'),
    h('a', { href: '#/account' }, 'Account'),
    h('a', { href: '/docs' }, 'API docs'),
    h('span', { class: 'who' }, h('span', { class: 'visually-hidden' }, 'Logged in as '), api.currentUser() ?? ''),
    h(
      'button',
      {
        type: 'button',
        id: 'logout',
        onclick: async () => {
          try {
            await api.logout();
          } catch (e) {
            notify('warn', `Logged out here, but the server did not confirm it: ${e.message}`);
            go('#/login');
          }
        },
      },
      'Log out',
    ),
  );
  const current = `#/${parse().name}`;
  for (const a of navEl.querySelectorAll('a[href^="#/"]')) {
    if (a.getAttribute('href') === current) a.setAttribute('aria-current', 'page');
  }
}

let generation = 0;
let first = true;
async function route() {
  // A skip link ("#main") is not a view.
  if (location.hash && !location.hash.startsWith('#/')) return;
  const { name, arg, query } = parse();
  let view = views[name];
  if (!view) {
    notify('error', `There is no page "${name}" in the console.`);
    view = views[api.loggedIn() ? 'keys' : 'login'];
  }
  if (!view.public && !api.loggedIn()) {
    returnAfterLogin(location.hash);
    if (!hasNotice()) notify('info', 'Log in to continue.');
    view = views.login;
  } else if (view.public && api.loggedIn() && (name === 'login' || name === 'register')) {
    view = views.keys;
  }
  renderNav();
  const mine = ++generation;
  const notice = takeNotice();
  if (notice) flash.show(...notice);
  else flash.clear();
  const root = h('section', { class: 'view' });
  fill(viewEl, root);
  try {
    await view.render(root, { arg, query, stale: () => mine !== generation });
  } catch (e) {
    // A view's own failure, shown rather than lost.
    if (mine === generation) flash.error(e);
  }
  // After a change of view, move focus to its heading so that keyboard
  // and screen reader users start at the new content; a page just loaded
  // starts at the top, as any page does.
  if (!first && mine === generation) root.querySelector('h1')?.focus({ preventScroll: true });
  first = false;
}

api.onSessionEnd((reason, kind) => {
  notify(kind, reason);
  go('#/login');
});

window.addEventListener('hashchange', route);

// A refresh token kept by this tab logs in again after a reload.
(async () => {
  try {
    if (await api.resume()) notify('info', `Welcome back, ${api.currentUser()}.`);
  } catch (e) {
    notify('warn', `Could not resume the session: ${e.message}`);
  }
  route();
})();
