// Moving between the console's views: the hash to go to, a message for
// the next view to show, and where to return once logged in.  Shared by
// the router (app.js) and the views, so that neither imports the other.

let pending = null; // [kind, text] for the next view
let afterLogin = null; // the hash a login should return to

// Show a message on the next view that renders.
export function notify(kind, text) {
  pending = [kind, text];
}

export function hasNotice() {
  return pending !== null;
}

export function takeNotice() {
  const p = pending;
  pending = null;
  return p;
}

export function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

export function returnAfterLogin(hash) {
  afterLogin = hash;
}

// After a login or a registration: back where the person was going.
export function loggedInNow() {
  const to = afterLogin && !/^#\/(login|register)?$/.test(afterLogin) ? afterLogin : '#/keys';
  afterLogin = null;
  go(to);
}
