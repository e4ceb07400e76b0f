"""A person's journey through kvapi's web console and API docs, in Debian's
chromium driven by chromium-driver (python3-selenium), for t/88-console.t.

    /usr/bin/python3 t/console/journey.py BASE_URL SHOT_DIR AXE_JS [TOKEN_LIFETIME]

It registers, logs in, creates, lists, opens, edits, conflicts over and
deletes keys; past the first access token's expiry (the stack's short
token_lifetime) it opens the account page without logging in again,
compares usage and quota with GET /api/users/me, edits the profile (a
taken email first), revokes a session and logs out the others, changes
the password; it narrows the window to 375 px, reloads (the refresh
token in sessionStorage logs in again), logs out, logs in with the new
password, deletes the account and tries GET /api/health in the docs,
asserting what each page shows and, through the API, what the page did;
the keyboard does the logins, the forms and the dialogs.  On every
screen it fails on a browser console error and on a serious or critical
axe-core violation, and it saves screenshots in SHOT_DIR.  A second
client (plain HTTP, as another device of the same person) changes keys
behind the page's back and checks what the page sent.

It prints one JSON object per check on stdout, {"ok", "name", "diag"},
which the .t file turns into TAP, and {"done": true} at the end.
"""

import datetime
import json
import os
import re
import shutil
import sys
import tempfile
import time
import base64
import traceback
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

BASE, SHOTS, AXE = sys.argv[1], sys.argv[2], sys.argv[3]
# The stack's token_lifetime: short, so that the page must rotate its
# refresh token during the journey.
LIFETIME = int(sys.argv[4]) if len(sys.argv) > 4 else 3600
USER = f"ada_{os.getpid()}"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "battery staple horse"
# Seconds to wait for what a page should show: generous, as script/test
# runs two test files at a time on two cores.
WAIT = 30


def emit(**kw):
    print(json.dumps(kw), flush=True)


def check(ok, name, diag=""):
    emit(ok=bool(ok), name=name, diag=diag if not ok else "")
    return bool(ok)


# ------------------------------------------------------------------ the other client


def api(method, path, body=None, token=None, headers=None):
    """One request as the second client: (status, headers, json)."""
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    if token:
        h["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, hdrs, raw = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, e.headers, e.read()
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        doc = None
    return status, hdrs, doc


def other_login(password=None):
    st, _, doc = api("POST", "/api/token", {"username": USER, "password": password or PASSWORD})
    if st != 200:
        raise RuntimeError(f"second client login: {st} {doc}")
    return doc["data"]


class Other:
    """The second client's login, rotated as a client should before its
    short-lived access token expires (the stack's token_lifetime)."""

    def __init__(self, password=None):
        self.login(password)

    def login(self, password=None):
        self.tok = other_login(password)
        self.at = time.monotonic()

    @property
    def token(self):
        if time.monotonic() - self.at > LIFETIME / 2:
            st, _, doc = api("POST", "/api/token",
                             {"grant_type": "refresh_token", "refresh_token": self.tok["refresh_token"]})
            if st != 200:
                raise RuntimeError(f"second client refresh: {st} {doc}")
            self.tok, self.at = doc["data"], time.monotonic()
        return self.tok["access_token"]

    @property
    def sid(self):
        return self.tok["session_id"]


def human(n):
    """As the page's bytes() (www/ui/dom.js) writes a size."""
    units = ["bytes", "KB", "MB", "GB", "TB"]
    i, v = 0, float(n)
    while v >= 1024 and i < len(units) - 1:
        v /= 1024
        i += 1
    if i == 0:
        return f"{n} {'byte' if n == 1 else 'bytes'}"
    return f"{v:.1f} {units[i]}" if v < 10 else f"{v:.0f} {units[i]}"


def kpath(key):
    return "/api/data/" + urllib.parse.quote(key, safe="")


# ------------------------------------------------------------------ the browser


def browser(profile):
    o = Options()
    o.binary_location = "/usr/bin/chromium"
    for a in (
        "--headless=new",
        "--no-sandbox",  # root in a container: no user namespace sandbox
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        # Nothing but the stack under test: no update, sync or field-trial
        # traffic to the outside.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-features=Translate,OptimizationHints,MediaRouter",
        "--lang=en-US",
    ):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


class Journey:
    def __init__(self, d):
        self.d = d
        self.n = 0
        self.axe_src = open(AXE, encoding="utf-8").read()

    # -- waiting and reading

    def wait(self, fn, what, timeout=WAIT):
        try:
            return WebDriverWait(self.d, timeout).until(lambda d: fn())
        except TimeoutException:
            return None

    def css(self, sel):
        return self.d.find_elements(By.CSS_SELECTOR, sel)

    def texts(self, sel, within=None):
        # Read in the page, in one go: elements a view replaces meanwhile
        # cannot go stale under us.
        return self.d.execute_script(
            "return [...(arguments[1] || document).querySelectorAll(arguments[0])].map(e => e.innerText)",
            sel,
            within,
        )

    def text(self, sel):
        t = self.texts(sel)
        return t[0] if t else ""

    def h1(self):
        return self.text("main h1")

    def wait_h1(self, words):
        got = self.wait(lambda: words in self.h1(), f"h1 {words}")
        return check(got, f'the page is "{words}"', f"h1 is {self.h1()!r}")

    def wait_text(self, sel, words, name):
        got = self.wait(lambda: any(words in t for t in self.texts(sel)), name)
        return check(got, name, f"{sel}: {self.texts(sel)!r}")

    def messages(self):
        return " | ".join(self.texts(".msg, .field-error"))

    def go(self, hash_):
        self.d.execute_script("location.hash = arguments[0]", hash_)

    def focused(self):
        """The focused element in words: its label, text or name."""
        return self.d.execute_script(
            """
            const e = document.activeElement;
            if (!e || e === document.body) return 'body';
            const label = e.labels && e.labels[0] ? e.labels[0].textContent : '';
            return e.tagName.toLowerCase() + ':' +
                (label || e.getAttribute('aria-label') || e.textContent || e.name || '').replace(/\s+/g, ' ').trim();
            """
        )

    def keys(self, *k):
        webdriver.ActionChains(self.d).send_keys(*k).perform()

    def fill(self, sel, value):
        el = self.css(sel)[0]
        el.clear()
        # A textarea's content in one go (send_keys would auto-indent
        # nothing, but is slow for long text).
        self.d.execute_script(
            "arguments[0].value = arguments[1];"
            "arguments[0].dispatchEvent(new Event('input', {bubbles: true}))",
            el,
            value,
        )
        return el

    def click_button(self, words, scope="body"):
        for b in self.css(f"{scope} button, {scope} a.button"):
            if b.text.strip() == words and b.is_displayed() and b.is_enabled():
                b.click()
                return True
        check(False, f'a button "{words}" to press', f"buttons: {[b.text for b in self.css(scope + ' button')]}")
        return False

    # -- evidence

    def shot(self, name, whole=True):
        self.n += 1
        path = os.path.join(SHOTS, f"{self.n:02d}-{name}.png")
        # The whole page (a console page is short), or the window.
        png = self.d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": whole})
        with open(path, "wb") as f:
            f.write(base64.b64decode(png["data"]))
        return path

    def axe(self, screen):
        if not self.d.execute_script("return typeof window.axe === 'object'"):
            self.d.execute_script(self.axe_src)
        res = self.d.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            axe.run(document, {resultTypes: ['violations']})
              .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                 nodes: v.nodes.slice(0, 12).map(n => n.target.join(' '))}))))
              .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));
            """
        )
        bad = [v for v in res if v["impact"] in ("serious", "critical")]
        return check(not bad, f"{screen}: no serious or critical accessibility violation (axe-core)", json.dumps(bad, indent=1))

    def console_clean(self, screen):
        """Browser console errors since the last call.  The API's error
        answers that the journey provokes on purpose (4xx from /api/) show
        as failed resource loads: those are expected; anything else fails."""
        bad = []
        for e in self.d.get_log("browser"):
            if e.get("level") not in ("SEVERE", "ERROR"):
                continue
            msg = e.get("message", "")
            if e.get("source") == "network" and BASE + "/api/" in msg and any(
                f"status of {c}" in msg for c in (400, 401, 404, 409, 412)
            ):
                continue
            bad.append(f"{e.get('source')}: {msg}")
        return check(not bad, f"{screen}: no errors in the browser console", "\n".join(bad))

    def screen(self, name, axe=True, whole=True):
        self.shot(name, whole)
        if axe:
            self.axe(name)
        self.console_clean(name)


# ------------------------------------------------------------------ the journey


def journey(j):
    d = j.d

    # The console log is really read: a console.error must show up.
    d.get(BASE + "/")
    d.execute_script("console.error('kvapi console log self-test')")
    seen = [e for e in d.get_log("browser") if "kvapi console log self-test" in e.get("message", "")]
    check(seen, "the browser console log is collected (self-test)")

    # ---- first sight: the login page
    d.get(BASE + "/")
    j.wait_h1("Log in")
    check("kvapi" in d.title, "the title names kvapi", d.title)
    j.screen("login")

    # ---- keyboard: tab order from the top of the page to the main actions
    d.get(BASE + "/")
    j.wait_h1("Log in")
    order = []
    for _ in range(9):
        j.keys(Keys.TAB)
        order.append(j.focused())
    want = [
        "a:Skip to content",
        "a:kvapi console",
        "a:Log in",
        "a:Register",
        "a:API docs",
        "input:Username",
        "input:Password",
        "button:Log in",
        "a:Create an account",
    ]
    check(order == want, "Tab walks the skip link, the header, then username, password, Log in, Create an account",
          f"got {order}")

    # ---- a wrong login, typed and submitted with Enter
    d.find_element(By.ID, "f-username").click()
    j.keys(USER, Keys.TAB, "not the password", Keys.ENTER)
    j.wait_text(".msg-error", "Invalid credentials. The provided username or password is incorrect.",
                "a failed login shows the API's message")
    j.console_clean("failed login")

    # ---- register (keyboard: the link, then Enter in the form)
    link = d.find_element(By.LINK_TEXT, "Create an account")
    link.send_keys(Keys.ENTER)
    j.wait_h1("Create an account")
    d.find_element(By.ID, "f-username").send_keys(USER)
    d.find_element(By.ID, "f-email").send_keys(f"{USER}@example.com")
    d.find_element(By.ID, "f-full_name").send_keys("Ada Lovelace")
    d.find_element(By.ID, "f-password").send_keys("short", Keys.ENTER)
    j.wait_text(".msg-error", "The provided password does not meet the requirements.",
                "a refused registration shows the API's message")
    j.screen("register-error")
    pw = d.find_element(By.ID, "f-password")
    pw.clear()
    pw.send_keys(PASSWORD, Keys.ENTER)
    j.wait_h1("Your keys")
    j.wait_text(".msg-ok", "User successfully registered!", "registering says so and logs in")
    j.wait_text(".status", "No keys yet", "a new account has no keys")
    check(USER in j.text(".top nav"), "the header names the user", j.text(".top nav"))
    j.screen("keys-empty", axe=False)

    # The page's first refresh token, and when it was issued: the page
    # must rotate it before its access token expires (LIFETIME).
    logged_in_at = time.monotonic()
    first_refresh = d.execute_script("return sessionStorage.getItem('kvapi.refresh')")
    check(first_refresh and json.loads(first_refresh).get("session_id"),
          "the login keeps a refresh token and its session in sessionStorage", f"{first_refresh!r}")
    other = Other()

    # ---- a new key: invalid JSON is refused before anything is sent
    j.click_button("New key", ".title-row")
    j.wait_h1("New key")
    d.find_element(By.ID, "f-key").send_keys("greeting")
    j.fill("#f-value", '{"hello": "world",}')
    j.fill("#f-ttl", "3600")
    j.click_button("Create", "form")
    j.wait_text(".field-error", "This is not valid JSON", "invalid JSON is refused in the page")
    check(d.find_element(By.ID, "f-value").get_attribute("aria-invalid") == "true", "the value field is marked invalid")
    st, _, _ = api("GET", kpath("greeting"), token=other.token)
    check(st == 404, "nothing was sent for invalid JSON", f"GET greeting: {st}")
    j.fill("#f-value", "null")
    j.click_button("Create", "form")
    j.wait_text(".field-error", "cannot be null", "null is refused in the page")
    value = {"hello": "world", "list": [1, 2, 3], "nested": {"ok": True, "pi": 3.14}}
    j.fill("#f-value", json.dumps(value))
    j.click_button("Create", "form")
    j.wait(lambda: "greeting" in j.h1(), "key view")
    check("greeting" in j.h1(), "after Create the key opens", j.h1())
    j.wait(lambda: j.css("pre.json"), "value")
    check(j.text("pre.json") == json.dumps(value, indent=2), "the value shows as formatted JSON",
          j.text("pre.json"))
    st, _, doc = api("GET", kpath("greeting"), token=other.token)
    check(st == 200 and doc["data"]["value"] == value, "the key is stored with that value", f"{st} {doc}")
    # The TTL of 3600 s was sent and kept (API.md "Data lifecycle").
    expires = doc["data"].get("expires_at") if st == 200 else None
    left = (datetime.datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ")
            .replace(tzinfo=datetime.timezone.utc).timestamp() - time.time()) if expires else None
    check(left is not None and 3500 < left <= 3600, "the key is stored with its TTL", f"{doc}")
    check(j.text(".meta dd") != "Never", "the key shows its expiry", j.text(".meta"))
    j.wait_text(".msg-ok", "Data stored successfully.", "creating says so")
    j.screen("key")

    # ---- the same key again: KEY_EXISTS in words
    j.go("#/new")
    j.wait_h1("New key")
    d.find_element(By.ID, "f-key").send_keys("greeting")
    j.fill("#f-value", "1")
    j.click_button("Create", "form")
    j.wait_text(".msg-error", "The provided key already exists in the database.", "KEY_EXISTS is shown in words")
    check(d.find_elements(By.LINK_TEXT, "Open the existing key"), "with a link to the existing key")
    j.console_clean("key exists")

    # ---- more keys from the other client; the list pages through them
    for i in range(1, 13):
        api("POST", "/api/data", {"key": f"item-{i:02d}", "value": {"n": i, "tags": ["demo", f"item {i}"]}}, token=other.token)
    odd = "notes/2026 plan?#%é"
    api("POST", "/api/data", {"key": odd, "value": ["a key with /, space, ?, #, % and é"]}, token=other.token)
    api("POST", "/api/data", {"key": "settings", "value": {"theme": "dark", "page_size": 25}}, token=other.token)
    j.go("#/keys")
    j.wait_h1("Your keys")
    j.wait(lambda: len(j.css(".key-list li")) == 15, "15 keys")
    keys = j.texts(".key-list .key")
    check(keys == sorted(["greeting", odd, "settings"] + [f"item-{i:02d}" for i in range(1, 13)], key=lambda k: k.encode()),
          "the list holds every key in byte order", f"{keys}")
    j.screen("keys")

    prefix = d.find_element(By.ID, "prefix")
    prefix.send_keys("item-")
    d.find_element(By.CSS_SELECTOR, "#limit option[value='10']").click()
    prefix.send_keys(Keys.ENTER)

    def page_keys():
        return j.texts(".key-list .key")

    j.wait(lambda: page_keys() == [f"item-{i:02d}" for i in range(1, 11)], "page 1")
    check(page_keys() == [f"item-{i:02d}" for i in range(1, 11)], "prefix search: page 1 holds item-01 to item-10",
          f"{page_keys()}")
    check("Page 1: keys 1 to 10 starting with “item-”; more follow." in j.text(".status"), "the page says where it is",
          j.text(".status"))
    j.click_button("Next page")
    j.wait(lambda: page_keys() == ["item-11", "item-12"], "page 2")
    check(page_keys() == ["item-11", "item-12"], "Next page: item-11 and item-12", f"{page_keys()}")
    check(not d.find_element(By.ID, "next-page").is_enabled(), "no next page after the last")
    j.click_button("Previous page")
    j.wait(lambda: page_keys() == [f"item-{i:02d}" for i in range(1, 11)], "page 1 again")
    check(page_keys()[0] == "item-01", "Previous page goes back", f"{page_keys()}")
    j.console_clean("pages")

    # ---- a key whose name needs escaping, opened from the list
    j.go("#/keys?prefix=notes")
    j.wait(lambda: page_keys() == [odd], "the odd key")
    d.find_element(By.LINK_TEXT, odd).click()
    j.wait(lambda: odd in j.h1(), "odd key view")
    check(odd in j.h1(), "a key with /, space, ?, # and % opens", j.h1())
    j.wait(lambda: j.css("pre.json"), "value")
    check(json.loads(j.text("pre.json")) == ["a key with /, space, ?, #, % and é"], "and shows its value",
          j.text("pre.json"))

    # ---- edit: invalid JSON stays in the page, valid JSON is saved
    j.go("#/key/greeting")
    j.wait(lambda: j.css("#edit"), "key view")
    j.click_button("Edit")
    j.wait(lambda: j.css("textarea#f-value"), "editor")
    check("hello" in d.find_element(By.ID, "f-value").get_attribute("value"), "the editor holds the value")
    j.fill("#f-value", '{"hello": ')
    j.fill("#f-ttl", "")
    j.click_button("Save")
    j.wait_text(".field-error", "This is not valid JSON", "the editor refuses invalid JSON")
    st, _, doc = api("GET", kpath("greeting"), token=other.token)
    check(doc["data"]["value"] == value, "and sent nothing", f"{doc}")
    j.screen("edit-invalid")
    j.fill("#f-value", '{"hello": "console"}')
    j.click_button("Save")
    j.wait_text(".msg-ok", "Data updated successfully.", "saving says so")
    j.wait(lambda: '"console"' in j.text("pre.json"), "new value")
    st, _, doc = api("GET", kpath("greeting"), token=other.token)
    check(doc["data"]["value"] == {"hello": "console"}, "the new value is stored", f"{doc}")
    check("expires_at" not in doc["data"], "saved without a TTL, the key no longer expires", f"{doc}")

    # ---- someone else changes it meanwhile: 412, reload
    j.click_button("Edit")
    j.wait(lambda: j.css("textarea#f-value"), "editor")
    j.fill("#f-value", '{"hello": "mine"}')
    api("PUT", kpath("greeting"), {"value": {"hello": "theirs"}}, token=other.token)
    j.click_button("Save")
    got = j.wait(lambda: j.css("dialog[open]"), "conflict dialog")
    check(got and "Someone else changed this key" in j.text("dialog[open]"), "a conflict opens a dialog",
          j.text("dialog[open]") if got else "no dialog")
    check("The resource has changed since it was read." in j.text("dialog[open]"), "with the API's message",
          j.text("dialog[open]"))
    j.screen("conflict")
    check(j.focused() == "button:Reload the current value", "the dialog's first choice has the focus", j.focused())
    j.keys(Keys.ENTER)
    j.wait(lambda: '"theirs"' in j.text("pre.json"), "their value")
    check('"theirs"' in j.text("pre.json"), "Reload shows their value", j.text("pre.json"))

    # ---- again, and overwrite
    j.click_button("Edit")
    j.wait(lambda: j.css("textarea#f-value"), "editor")
    j.fill("#f-value", '{"hello": "mine"}')
    api("PUT", kpath("greeting"), {"value": {"hello": "theirs again"}}, token=other.token)
    j.click_button("Save")
    j.wait(lambda: j.css("dialog[open]"), "conflict dialog")
    j.keys(Keys.TAB, Keys.ENTER)  # the second choice: Overwrite with mine
    j.wait(lambda: '"mine"' in j.text("pre.json"), "my value")
    st, _, doc = api("GET", kpath("greeting"), token=other.token)
    check(doc["data"]["value"] == {"hello": "mine"}, "Overwrite stores my value", f"{doc}")
    j.console_clean("conflict")

    # ---- delete, after someone else changed it: 412, delete anyway
    api("PUT", kpath("greeting"), {"value": {"hello": "changed before the delete"}}, token=other.token)
    j.click_button("Delete")
    j.wait(lambda: j.css("dialog[open]"), "confirm dialog")
    check("Delete this key?" in j.text("dialog[open]"), "Delete asks first", j.text("dialog[open]"))
    check(j.focused() == "button:Cancel", "with Cancel focused", j.focused())
    j.keys(Keys.TAB, Keys.ENTER)
    j.wait(lambda: "Someone else changed this key" in j.text("dialog[open]"), "412 dialog")
    check("Someone else changed this key" in j.text("dialog[open]"), "a stale delete is a conflict too",
          j.text("dialog[open]"))
    j.keys(Keys.TAB, Keys.ENTER)  # Delete it anyway
    j.wait(lambda: "Delete anyway?" in j.text("dialog[open]"), "confirm again")
    j.keys(Keys.TAB, Keys.ENTER)
    j.wait_h1("Your keys")
    j.wait_text(".msg-ok", "Data deleted successfully.", "deleting says so")
    st, _, _ = api("GET", kpath("greeting"), token=other.token)
    check(st == 404, "the key is gone", f"GET greeting: {st}")
    j.console_clean("delete")

    # ---- the account page, past the first access token's expiry: the
    # page rotated its refresh token by itself, and no login was asked for
    left = logged_in_at + LIFETIME + 2 - time.monotonic()
    if left > 0:
        time.sleep(left)
    j.go("#/account")
    j.wait_h1("Account")
    me = api("GET", "/api/users/me", token=other.token)[2]["data"]
    u, q = me["usage"], me["quota"]
    j.wait_text("#acct-profile ~ div label", f"Keys: {u['keys']:,} of {q['keys']:,}",
                "past the first access token's expiry the page still works, with no new login")
    check(j.text("#acct-profile ~ div label[for='usage-bytes']") == f"Storage: {human(u['bytes'])} of {human(q['bytes'])}",
          "the page shows storage used against the quota", j.text("#acct-profile ~ div label[for='usage-bytes']"))
    meters = d.execute_script("return ['usage-keys', 'usage-bytes'].map(id => {"
                              "const m = document.getElementById(id); return [m.value, m.max]; })")
    check(meters == [[u["keys"], q["keys"]], [u["bytes"], q["bytes"]]],
          "the meters hold GET /api/users/me's usage and quota", f"{meters} vs {u} {q}")
    check(u["keys"] == 14, "usage counts the 14 keys", f"{u}")
    now_refresh = json.loads(d.execute_script("return sessionStorage.getItem('kvapi.refresh')") or "{}")
    first = json.loads(first_refresh)
    check(now_refresh.get("refresh_token") not in (None, first["refresh_token"])
          and now_refresh.get("session_id") == first["session_id"],
          "the page rotated its refresh token within its session", f"{now_refresh}")
    sessions = api("GET", "/api/sessions", token=other.token)[2]["data"]["items"]
    mine = [s for s in sessions if s["session_id"] == first["session_id"]]
    check(mine and mine[0]["refreshed_at"], "the server saw the page's session refreshed", f"{sessions}")
    j.wait_text(".sessions", "this session", "the sessions list marks this one")
    listed = d.execute_script("return [...document.querySelectorAll('.sessions li')].map("
                              "li => [li.dataset.sessionId, !!li.querySelector('.badge')])")
    check(sorted(listed) == sorted([[s["session_id"], s["session_id"] == first["session_id"]] for s in sessions]),
          "the list holds every live session, the page's own marked, the other client's too",
          f"page {listed}; API {sessions}")
    check("Python-urllib" in j.text(".sessions"), "with the other client's user agent", j.text(".sessions"))
    j.screen("account")

    # ---- profile: a taken email is refused in words, then a real edit
    other_user = f"bob_{os.getpid()}"
    st, _, _ = api("POST", "/api/register", {"username": other_user, "email": f"{other_user}@example.com",
                                             "full_name": "Bob", "password": PASSWORD})
    check(st == 201, "a second user registers (API)", f"{st}")
    email = d.find_element(By.ID, "f-email")
    email.clear()
    email.send_keys(f"{other_user}@example.com", Keys.ENTER)
    j.wait_text("#acct-profile ~ div .msg-error",
                "The provided email is already registered. Please use a different email address. (EMAIL_EXISTS, HTTP 409)",
                "a taken email shows EMAIL_EXISTS in words")
    email = d.find_element(By.ID, "f-email")
    email.clear()
    email.send_keys(f"{USER}@example.com")
    name = d.find_element(By.ID, "f-full_name")
    name.clear()
    name.send_keys("Ada King", Keys.ENTER)
    j.wait_text("#acct-profile ~ div .msg-ok", "User updated successfully.", "saving the profile says so")
    me = api("GET", "/api/users/me", token=other.token)[2]["data"]
    check(me["full_name"] == "Ada King" and me["email"] == f"{USER}@example.com",
          "the profile is stored (PATCH sent only what changed)", f"{me}")
    j.console_clean("profile")

    # ---- sessions: revoke the other client's, by keyboard
    dead = other.tok
    btn = d.find_element(By.CSS_SELECTOR, f".sessions li[data-session-id='{dead['session_id']}'] button")
    btn.send_keys(Keys.ENTER)
    j.wait(lambda: j.css("dialog[open]"), "revoke dialog")
    check("Revoke this session?" in j.text("dialog[open]") and j.focused() == "button:Cancel",
          "Revoke asks first, Cancel focused", j.text("dialog[open]") + " / " + j.focused())
    j.keys(Keys.TAB, Keys.ENTER)
    j.wait_text("#acct-sessions ~ div .msg-ok", "Session revoked.", "revoking says so")
    check(not j.css(f".sessions li[data-session-id='{dead['session_id']}']"), "and the session leaves the list")

    def is_dead(tok):
        a = api("GET", "/api/users/me", token=tok["access_token"])
        r = api("POST", "/api/token", {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]})
        return a[0] == 401 and a[2]["code"] == "INVALID_TOKEN" and r[0] == 401 and r[2]["code"] == "INVALID_GRANT", \
            f"access: {a[0]} {a[2]}; refresh: {r[0]} {r[2]}"

    ok, why = is_dead(dead)
    check(ok, "the revoked session's access and refresh tokens are dead (API)", why)

    # ---- two more devices, then "Log out all other sessions"
    a, b = Other(), Other()
    j.go("#/keys")
    j.wait_h1("Your keys")
    j.go("#/account")
    j.wait_h1("Account")
    j.wait(lambda: len(j.css(".sessions li")) == 3, "3 sessions")
    check(len(j.css(".sessions li")) == 3, "two new logins show up in the list", j.text(".sessions"))
    btn = [b_ for b_ in j.css("#acct-sessions ~ div button") if b_.text == "Log out all other sessions"]
    check(btn, 'a "Log out all other sessions" button')
    btn[0].send_keys(Keys.ENTER)
    j.wait_text("#acct-sessions ~ div .msg-ok", "Other sessions revoked. (2 ended)", "logging out the others says so")
    check(len(j.css(".sessions li")) == 1 and j.css(".sessions li .badge"), "only this session is left",
          j.text(".sessions"))
    for n, t in (("first", a.tok), ("second", b.tok)):
        ok, why = is_dead(t)
        check(ok, f"the {n} other session's tokens are dead (API)", why)
    j.console_clean("sessions")

    # ---- change the password: the old one is refused, the new one works,
    # other sessions end, this one stays
    other = Other()
    d.find_element(By.ID, "f-current_password").send_keys(PASSWORD)
    d.find_element(By.ID, "f-new_password").send_keys(NEW_PASSWORD)
    d.find_element(By.ID, "f-confirm").send_keys(NEW_PASSWORD, Keys.ENTER)
    j.wait_text("#acct-password ~ div .msg-ok", "Password changed successfully.", "changing the password says so")
    st, _, doc = api("POST", "/api/token", {"username": USER, "password": PASSWORD})
    check(st == 401 and doc["code"] == "INVALID_CREDENTIALS", "the old password is refused (API)", f"{st} {doc}")
    ok, why = is_dead(other.tok)
    check(ok, "the change ended the other client's session", why)
    other = Other(NEW_PASSWORD)
    check(True, "the new password logs in (API)")
    j.console_clean("password")

    # ---- 375 px wide: a phone's viewport (overlay scroll bars, as there)
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True})
    j.go("#/keys")
    j.wait_h1("Your keys")
    j.wait(lambda: len(j.css(".key-list li")) == 14, "list")
    width = d.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    check(width == [375, 375], "at 375 px nothing is wider than the screen", f"scrollWidth, clientWidth: {width}")
    j.screen("keys-375px")
    j.go("#/key/" + urllib.parse.quote(odd, safe=""))
    j.wait(lambda: j.css("pre.json"), "value")
    width = d.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    check(width == [375, 375], "a key at 375 px fits too", f"{width}")
    j.click_button("Edit")
    j.wait(lambda: j.css("textarea#f-value"), "editor")
    width = d.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    check(width == [375, 375], "so does the editor", f"{width}")
    j.screen("edit-375px")
    j.go("#/account")
    j.wait_h1("Account")
    j.wait_text(".sessions", "this session", "the account page at 375 px")
    width = d.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    check(width == [375, 375], "the account page fits at 375 px", f"{width}")
    j.screen("account-375px")
    d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    # ---- reload: the access token lived in memory only, the refresh
    # token in sessionStorage logs this tab in again
    j.go("#/key/" + urllib.parse.quote(odd, safe=""))
    j.wait(lambda: odd in j.h1(), "the key")
    d.refresh()
    j.wait(lambda: odd in j.h1(), "the key again")
    check(odd in j.h1(), "after a reload the refresh token logs this tab in again", j.h1())
    j.wait_text(".msg-info", f"Welcome back, {USER}.", "and says so")
    check(not d.execute_script("return Object.keys(localStorage).length"), "nothing is kept in localStorage")
    stored = json.loads(d.execute_script("return sessionStorage.getItem('kvapi.refresh')") or "{}")
    check(stored.get("session_id") == first["session_id"], "the same session goes on after the reload", f"{stored}")
    j.console_clean("reload")

    # ---- log out
    j.click_button("Log out", ".top")
    j.wait_h1("Log in")
    j.wait_text(".msg-ok", "You are logged out.", "logging out says so")
    check(not d.execute_script("return sessionStorage.getItem('kvapi.refresh')"), "and forgets the refresh token")
    sessions = api("GET", "/api/sessions", token=other.token)[2]["data"]["items"]
    check([s["session_id"] for s in sessions] == [other.sid], "the page's session is over (API)", f"{sessions}")
    j.go("#/keys")
    j.wait_text(".msg-info", "Log in to continue.", "the keys need a login again")
    j.console_clean("logout")

    # ---- log in with the new password (keyboard), delete the account
    j.go("#/login")
    j.wait_h1("Log in")
    d.find_element(By.ID, "f-username").click()
    j.keys(USER, Keys.TAB, NEW_PASSWORD, Keys.ENTER)
    j.wait_h1("Your keys")
    j.go("#/account")
    j.wait_h1("Account")
    j.wait(lambda: j.css("form[aria-label='Delete account'] input[name=password]"), "delete form")
    pw = d.find_element(By.CSS_SELECTOR, "form[aria-label='Delete account'] input[name=password]")
    pw.send_keys("not the password", Keys.ENTER)
    j.wait(lambda: j.css("dialog[open]"), "delete dialog")
    check("Delete your account?" in j.text("dialog[open]") and j.focused() == "button:Cancel",
          "deleting asks first, Cancel focused", j.text("dialog[open]") + " / " + j.focused())
    j.keys(Keys.TAB, Keys.ENTER)
    j.wait_text("form[aria-label='Delete account'] .msg-error", "Invalid credentials.",
                "a wrong password keeps the account, in words")
    pw = d.find_element(By.CSS_SELECTOR, "form[aria-label='Delete account'] input[name=password]")
    pw.clear()
    pw.send_keys(NEW_PASSWORD, Keys.ENTER)
    j.wait(lambda: j.css("dialog[open]"), "delete dialog")
    j.keys(Keys.TAB, Keys.ENTER)
    j.wait_h1("Log in")
    j.wait_text(".msg-ok", "User deleted successfully.", "deleting the account says so")
    check(not d.execute_script("return sessionStorage.getItem('kvapi.refresh')"), "and forgets the refresh token")
    ok, why = is_dead(other.tok)
    check(ok, "every session of the account is gone (API)", why)
    st, _, doc = api("POST", "/api/register", {"username": USER, "email": f"{USER}@example.com",
                                               "full_name": "Ada again", "password": PASSWORD})
    check(st == 201, "the username (and email) can register again", f"{st} {doc}")
    j.console_clean("delete account")

    # ---- the API docs, and a "try it out" of GET /api/health
    d.get(BASE + "/docs")
    got = j.wait(lambda: "kvapi" in j.text(".swagger-ui .info .title"), "docs")
    check(got, "/docs renders the OpenAPI document", j.text("body")[:300])
    j.wait(lambda: j.css(".opblock-summary-path[data-path='/api/health']"), "health operation")
    j.screen("docs", whole=False)
    op = d.find_element(By.XPATH, "//*[@data-path='/api/health']/ancestor::div[contains(@class,'opblock-get')][1]")
    op.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    j.wait(lambda: op.find_elements(By.CSS_SELECTOR, ".try-out__btn"), "try it out")
    op.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    j.wait(lambda: op.find_elements(By.CSS_SELECTOR, "button.execute"), "execute")
    op.find_element(By.CSS_SELECTOR, "button.execute").click()
    live = ".live-responses-table tr.response"
    got = j.wait(lambda: j.texts(f"{live} .response-col_status", op) == ["200"], "200")
    check(got, 'the docs\' "try it out" of GET /api/health answers 200', " | ".join(j.texts(".responses-wrapper", op))[:800])
    body = "".join(j.texts(f"{live} .response-col_description pre", op))
    check(re.search(r'"database":\s*"up"', body), "and shows the health body", body[:300])
    url = "".join(j.texts(".request-url pre", op))
    check(url.strip() == BASE + "/api/health", "against this origin", url)
    # The operation from its title to the answer, in one tall window.
    d.set_window_size(1280, 1500)
    d.execute_script("arguments[0].scrollIntoView(); window.scrollBy(0, -20)", op)
    j.screen("docs-try-it-out", whole=False)
    d.set_window_size(1280, 900)


def main():
    os.makedirs(SHOTS, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="kvapi-chromium-")
    d = None
    try:
        d = browser(profile)
        journey(Journey(d))
    except Exception:
        emit(ok=False, name="the journey ran to its end", diag=traceback.format_exc())
    finally:
        if d is not None:
            d.quit()
        shutil.rmtree(profile, ignore_errors=True)
    emit(done=True)


if __name__ == "__main__":
    main()
