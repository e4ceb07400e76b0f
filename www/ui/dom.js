// Small DOM helpers for the console's views.  Everything shown is built
// with elements and text nodes, never from HTML strings, so that keys and
// values (anyone's data) cannot inject markup.

// h('button', {type: 'submit', onclick: f}, 'Save'): an element with
// attributes (on* names add listeners; false/null leave them out) and
// children (strings become text; arrays are flattened; null skipped).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Replace an element's children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A message area: an error is announced at once (role alert), other news
// politely (role status).  show(kind, text) with kind 'error', 'ok',
// 'warn' or 'info'; clear() empties it.
export function messageArea() {
  const el = h('div', { class: 'messages' });
  const api = {
    el,
    show(kind, ...text) {
      const role = kind === 'error' ? 'alert' : 'status';
      fill(el, h('p', { class: `msg msg-${kind}`, role }, ...text));
    },
    error(e) {
      api.show('error', describe(e));
    },
    clear() {
      el.replaceChildren();
    },
  };
  return api;
}

// An error in words: the API's message, and its code for reference.
export function describe(e) {
  if (e && typeof e.code === 'string' && typeof e.status === 'number') {
    const where = e.status ? `${e.code}, HTTP ${e.status}` : e.code;
    return [e.message, ' ', h('span', { class: 'code' }, `(${where})`)];
  }
  return [String(e?.message ?? e)];
}

// A labelled form field: {label, name, type, value, hint, attrs}.
export function field({ label, name, type = 'text', value = '', hint, ...attrs }) {
  const id = `f-${name}`;
  const hintId = hint ? `${id}-hint` : null;
  const input =
    type === 'textarea'
      ? h('textarea', { id, name, 'aria-describedby': hintId, spellcheck: 'false', ...attrs }, value)
      : h('input', { id, name, type, value, 'aria-describedby': hintId, ...attrs });
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    input,
  );
}

// A modal question with buttons; resolves with the value of the button
// chosen, or null when dismissed with Escape.  The first button is the
// default (focused) one.  buttons: [{label, value, kind}].
export function ask(title, body, buttons) {
  return new Promise((resolve) => {
    const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
    const dlg = h(
      'dialog',
      { class: 'dialog', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, title),
      h('div', { class: 'dialog-body' }, body),
      h(
        'div',
        { class: 'actions' },
        buttons.map((b) =>
          h('button', { type: 'button', class: b.kind ?? '', onclick: () => dlg.close(b.value) }, b.label),
        ),
      ),
    );
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(dlg.returnValue === '' ? null : dlg.returnValue);
    });
    document.body.append(dlg);
    dlg.showModal();
    dlg.querySelector('button')?.focus();
  });
}

// Format a number of bytes for people (1.5 KB, 100 MB).
export function bytes(n) {
  if (!Number.isFinite(n)) return '?';
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} ${v === 1 ? 'byte' : 'bytes'}` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

// An RFC 3339 time as local date and time.
export function when(t) {
  if (!t) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}
