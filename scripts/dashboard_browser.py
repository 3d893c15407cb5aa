"""Drives headless Chromium through the dashboard of `lethe serve` (scripts/e2e-dashboard).

WebDriver over plain HTTP (the W3C protocol chromedriver speaks), standard library only: nothing is
downloaded, chromedriver and chromium are Debian's. Every page's browser log is collected and any
SEVERE entry (a console error, a CSP violation, a failed load) fails the run. Screenshots go to the
artifacts folder.

Usage: dashboard_browser.py BASE ARTIFACTS CONFIG.json
CONFIG: {"tokens": {"alice":…, "bob":…, "audra":…}, "approve_id":…, "reject_id":…, "subjects": [raw ids filed],
         "chromedriver": path, "chromium": path}
Prints one `ok   - …` / `FAIL - …` line per check; exits 1 when a check failed.
"""
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

BASE, ARTIFACTS, CONFIG = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
os.makedirs(ARTIFACTS, exist_ok=True)
passed = failed = 0
shot_no = 0


def ok(name):
    global passed
    passed += 1
    print(f"ok   - {name}", flush=True)


def bad(name):
    global failed
    failed += 1
    print(f"FAIL - {name}", flush=True)


def check(cond, name):
    ok(name) if cond else bad(name)
    return cond


class WebDriver:
    def __init__(self, driver, chromium):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.log = open(os.path.join(ARTIFACTS, "chromedriver.log"), "w")
        self.proc = subprocess.Popen([driver, f"--port={self.port}"], stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                self.call("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
            },
        }
        r = self.call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
        self.session = r["sessionId"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read() or b"{}").get("value", {})
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"webdriver {method} {path}: {e.code} {e.read()[:400]!r}")

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def get(self, url):
        self.s("POST", "/url", {"url": url})

    def current_url(self):
        return self.s("GET", "/url")

    def source(self):
        return self.s("GET", "/source")

    def find(self, css):
        r = self.s("POST", "/elements", {"using": "css selector", "value": css})
        return [list(e.values())[0] for e in r]

    def text(self, css):
        try:
            els = self.find(css)
            return self.s("GET", f"/element/{els[0]}/text") if els else None
        except RuntimeError:  # the page navigated between the two calls (a stale element)
            return None

    def wait_text(self, css, want, timeout=20):
        """Polls until the element's text is one of `want` (a form's navigation may still be under way)."""
        deadline = time.time() + timeout
        t = None
        while time.time() < deadline:
            t = self.text(css)
            if t in want:
                return t
            time.sleep(0.1)
        return t

    def type(self, css, text):
        self.s("POST", f"/element/{self.find(css)[0]}/value", {"text": text})

    def click(self, css):
        self.s("POST", f"/element/{self.find(css)[0]}/click", {})

    def script(self, js):
        return self.s("POST", "/execute/sync", {"script": js, "args": []})

    def cookies(self):
        return self.s("GET", "/cookie")

    def browser_log(self):
        return self.s("POST", "/se/log", {"type": "browser"})

    def screenshot(self, name):
        global shot_no
        shot_no += 1
        # The whole page, not only the viewport: Chrome's DevTools command through chromedriver.
        try:
            m = self.s("POST", "/goog/cdp/execute", {"cmd": "Page.getLayoutMetrics", "params": {}})
            size = m.get("cssContentSize") or m["contentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000), "scale": 1}
            shot = self.s("POST", "/goog/cdp/execute",
                          {"cmd": "Page.captureScreenshot", "params": {"format": "png", "captureBeyondViewport": True, "clip": clip}})
            png = base64.b64decode(shot["data"])
        except (RuntimeError, KeyError):
            png = base64.b64decode(self.s("GET", "/screenshot"))
        path = os.path.join(ARTIFACTS, f"{shot_no:02d}-{name}.png")
        with open(path, "wb") as f:
            f.write(png)
        return len(png)

    def quit(self):
        try:
            self.s("DELETE", "")
        except Exception:
            pass
        self.proc.terminate()
        self.proc.wait(timeout=10)


console_errors = []


def collect(wd, where):
    for entry in wd.browser_log():
        if entry.get("level") == "SEVERE" and "lethe-e2e-probe" not in entry.get("message", ""):
            console_errors.append(f"{where}: {entry.get('message')}")


def page(wd, path, name):
    wd.get(BASE + path)
    n = wd.screenshot(name)
    collect(wd, path)
    return n


def login(wd, who):
    wd.get(BASE + "/")
    wd.type("#token", CONFIG["tokens"][who])
    wd.click(".login-form button")
    # The click returns once the form is submitted, not once the next page is loaded: wait for it.
    deadline = time.time() + 20
    url = wd.current_url()
    while url.endswith("/ui/login") and time.time() < deadline:
        time.sleep(0.1)
        url = wd.current_url()
    collect(wd, f"login {who}")
    return url


def logout(wd):
    wd.click("form.logout button")
    # As for the login: the click returns once the form is submitted; wait for the login page
    # (seen failing once on a loaded machine, the next check passing).
    deadline = time.time() + 20
    while not wd.current_url().endswith("/ui/login") and time.time() < deadline:
        time.sleep(0.1)
    collect(wd, "logout")


def form_post(path, cookie, fields, origin):
    """A POST the browser would not send (no CSRF token, or from elsewhere): its status."""
    data = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in fields.items()).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    if origin:
        headers["Origin"] = origin
    req = urllib.request.Request(BASE + path, data=data, method="POST", headers=headers)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


wd = WebDriver(CONFIG["chromedriver"], CONFIG["chromium"])
try:
    approve_id, reject_id = CONFIG["approve_id"], CONFIG["reject_id"]

    # The browser log is collected: a console error is seen (the probe is then ignored).
    wd.get(BASE + "/ui/login")
    wd.script("console.error('lethe-e2e-probe')")
    probe = [e for e in wd.browser_log() if "lethe-e2e-probe" in e.get("message", "")]
    check(len(probe) == 1 and probe[0]["level"] == "SEVERE", "the browser log is collected (a console.error probe is seen)")
    # The CSP holds: a script or an image from elsewhere injected into the page is blocked, and the
    # violation is a console error the collector sees (these induced entries are then ignored).
    wd.script("var s = document.createElement('script'); s.textContent = 'window.leaked = 1'; document.body.appendChild(s);"
              "var i = document.createElement('img'); i.src = 'http://evil.example/lethe-e2e-probe.png'; document.body.appendChild(i);")
    time.sleep(0.3)
    leaked = wd.script("return window.leaked === undefined")
    csp = [e["message"] for e in wd.browser_log() if e.get("level") == "SEVERE" and "Content Security Policy" in e.get("message", "")]
    check(leaked and any("script" in m for m in csp) and any("img-src" in m or "image" in m for m in csp),
          f"CSP: an injected inline script and a foreign image are blocked and reported ({len(csp)} violations)")
    wd.get(BASE + "/ui/login")
    wd.screenshot("login")

    # / → the login page (no session)
    wd.get(BASE + "/")
    check(wd.current_url().endswith("/ui/login"), "/ without a session leads to the login page")

    # An approver logs in, sees the request, approves it in the browser; the scheduler runs it to verified.
    url = login(wd, "bob")
    check(url.endswith("/ui/requests"), f"bob logs in (at {url})")
    session_cookie = next((c for c in wd.cookies() if c["name"] == "lethe_session"), None)
    check(session_cookie is not None and session_cookie.get("httpOnly") and session_cookie.get("sameSite") == "Strict"
          and CONFIG["tokens"]["bob"] not in session_cookie["value"], "session cookie: HttpOnly, SameSite=Strict, no token in it")
    wd.screenshot("requests-approver")
    src = wd.source()
    check(approve_id in src and reject_id in src, "the requests page lists the filed requests")
    page(wd, f"/ui/requests/{approve_id}", "request-planned")
    check(wd.text("#status") == "planned" and len(wd.find("svg.lineage")) == 1, "the request page: planned, lineage graph drawn")

    # Forged POSTs with the live session: no CSRF token, or another origin → 403.
    cookie = f"lethe_session={session_cookie['value']}"
    csrf = wd.find("input[name=csrf]") and wd.script("return document.querySelector('input[name=csrf]').value")
    check(form_post(f"/ui/requests/{approve_id}/approve", cookie, {}, BASE) == 403, "POST without the CSRF token: 403")
    check(form_post(f"/ui/requests/{approve_id}/approve", cookie, {"csrf": csrf}, "http://evil.example") == 403,
          "POST from another origin: 403")

    wd.click("#approve")
    after = wd.wait_text("#status", ("approved", "running", "erased", "verified"))
    collect(wd, "approve")
    check(after in ("approved", "running", "erased", "verified"), f"approve in the browser ({after})")
    status = None
    for _ in range(150):
        wd.get(BASE + f"/ui/requests/{approve_id}")
        status = wd.text("#status")
        if status in ("verified", "failed"):
            break
        time.sleep(0.4)
    collect(wd, "request verified")
    wd.screenshot("request-verified")
    check(status == "verified", f"the approved request reaches verified ({status})")
    check((wd.text("#certificate-check") or "").startswith("Signature valid"), "the certificate verifies on its page")
    check(len(wd.find("#certificate-download")) == 1, "the certificate download link")
    src = wd.source()
    check(not any(s in src for s in CONFIG["subjects"]), "no raw subject id in the request page")

    # Reject with a reason holding markup: rendered as text.
    reason = "<script>alert(1)</script> duplicate of an earlier request"
    page(wd, f"/ui/requests/{reject_id}", "request-to-reject")
    wd.type("#reject-reason", reason)
    wd.click("#reject")
    after = wd.wait_text("#status", ("rejected",))
    collect(wd, "reject")
    wd.screenshot("request-rejected")
    check(after == "rejected" and wd.text("#decision-reason") == reason, "reject with a reason: shown as text")
    check("<script>alert" not in wd.source(), "the reason's markup is escaped")

    # The filter form: rejected only.
    wd.get(BASE + "/ui/requests")
    wd.s("POST", f"/element/{wd.find('#status option[value=rejected]')[0]}/click", {})
    wd.click("form.filter button")
    for _ in range(100):
        if "status=rejected" in wd.current_url() and wd.text("h1") == "Requests":
            break
        time.sleep(0.1)
    collect(wd, "filter")
    src = wd.source()
    check("status=rejected" in wd.current_url() and reject_id in src and approve_id not in src,
          f"the status filter: rejected only ({wd.current_url()})")
    for path, name in [("/ui/charts", "charts"), ("/ui/index", "index")]:
        page(wd, path, name)
        check(len(wd.find("main table, main svg")) > 0, f"{path} renders")
    logout(wd)
    check(wd.current_url().endswith("/ui/login"), "logout leads to the login page")
    wd.get(BASE + "/ui/requests")
    check(wd.current_url().endswith("/ui/login"), "after logout the pages need a login again")

    # The auditor: the audit log with its chain check.
    login(wd, "audra")
    page(wd, "/ui/audit", "audit")
    check((wd.text("#chain") or "").startswith("Chain verified"), "audit log: chain verified")
    page(wd, f"/ui/requests/{approve_id}", "request-auditor")
    check(len(wd.find("#approve")) == 0 and len(wd.find("#reject")) == 0, "an auditor sees no decision buttons")
    logout(wd)

    # The requester: own requests only, no audit log.
    login(wd, "alice")
    page(wd, "/ui/requests", "requests-requester")
    check(approve_id in wd.source(), "the requester sees her requests")
    wd.get(BASE + "/ui/audit")
    check("Error 403" in wd.source(), "the requester may not see the audit log (403 page)")
    # A 403 page is an expected failed load: its console line is not an error of ours.
    for e in wd.browser_log():
        if e.get("level") == "SEVERE" and "403" not in e.get("message", ""):
            console_errors.append(f"/ui/audit as requester: {e.get('message')}")
    wd.get(BASE + "/ui/requests")
    logout(wd)

    check(not console_errors, "no console errors" + ("" if not console_errors else ": " + "; ".join(console_errors[:5])))
    check(shot_no >= 10, f"{shot_no} screenshots in {ARTIFACTS}")
except Exception as e:  # a WebDriver failure is a failed check, with what was asked
    bad(f"browser session: {e}")
finally:
    wd.quit()
print(f"dashboard browser: {passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
