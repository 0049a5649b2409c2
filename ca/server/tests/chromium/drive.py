#!/usr/bin/env python3
"""Drives a running headless Chromium through Signet's enrollment page over
the DevTools protocol, for tests/chromium_enroll.rs.

    drive.py DEVTOOLS_PORT enroll:URL [open:URL ...]

Gives the page target a CTAP2 virtual security key (usb, user verification,
presence simulated), then visits each URL in turn: `enroll:` waits for the
Enroll button, clicks it and waits until the page's #status says done or
error; `open:` only waits until the page has asked the CA about its invite
(the button enabled, or #status in error). Prints one JSON object on
stdout: {"visits": [{state, status, who, enabled, url}], "credentials":
WebAuthn.getCredentials}. Every wait is bounded; any failure ends with a
message on stderr and exit status 1.

Needs websocket-client (Debian: python3-websocket).
"""

import json
import sys
import time
import urllib.request

import websocket

# How long one page may take to reach each state.
STEP_SECONDS = 20

PROBE = """JSON.stringify((() => {
  const s = document.getElementById("status");
  const b = document.getElementById("enroll");
  const w = document.getElementById("who");
  return {
    url: location.href,
    ready: document.readyState,
    state: s ? s.dataset.state : null,
    status: s ? s.textContent : null,
    who: w ? w.textContent : null,
    enabled: b ? !b.disabled : false,
  };
})())"""


def fail(message):
    sys.stderr.write("drive.py: %s\n" % message)
    sys.exit(1)


class Target:
    def __init__(self, url):
        self.ws = websocket.create_connection(url, timeout=STEP_SECONDS)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError("%s: %s" % (method, message["error"]))
                return message["result"]

    def probe(self):
        """The page's state, or None while no document answers."""
        try:
            result = self.call("Runtime.evaluate", expression=PROBE, returnByValue=True)
        except RuntimeError:
            return None
        value = result.get("result", {}).get("value")
        return json.loads(value) if isinstance(value, str) else None

    def wait(self, what, done):
        deadline = time.monotonic() + STEP_SECONDS
        last = None
        while time.monotonic() < deadline:
            last = self.probe()
            if last is not None and last["url"].startswith("chrome-error:"):
                fail("the browser could not load the page (TLS or connection error)")
            if last is not None and done(last):
                return last
            time.sleep(0.05)
        fail("the page did not get to %s within %d s; last seen: %s" % (what, STEP_SECONDS, last))


def page_target(port):
    deadline = time.monotonic() + STEP_SECONDS
    while time.monotonic() < deadline:
        with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=5) as r:
            targets = json.load(r)
        pages = [t for t in targets if t.get("type") == "page"]
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.05)
    fail("no page target")


def main(argv):
    if len(argv) < 3:
        fail("usage: drive.py DEVTOOLS_PORT enroll:URL [open:URL ...]")
    target = Target(page_target(int(argv[1])))
    target.call("WebAuthn.enable", enableUI=False)
    authenticator = target.call(
        "WebAuthn.addVirtualAuthenticator",
        options={
            "protocol": "ctap2",
            "transport": "usb",
            "hasResidentKey": False,
            "hasUserVerification": True,
            "isUserVerified": True,
            "automaticPresenceSimulation": True,
        },
    )["authenticatorId"]

    visits = []
    for arg in argv[2:]:
        action, _, url = arg.partition(":")
        if action not in ("enroll", "open") or not url:
            fail("bad visit %r: want enroll:URL or open:URL" % arg)
        target.call("Page.navigate", url=url)
        # The page asks the CA about its invite on load: the button comes
        # on when the CA accepted it, #status says error when not.
        state = target.wait(
            "its invite's answer",
            lambda s: s["url"] == url
            and s["ready"] == "complete"
            and (s["enabled"] or s["state"] == "error"),
        )
        if action == "enroll" and state["enabled"]:
            result = target.call(
                "Runtime.evaluate",
                expression='document.getElementById("enroll").click()',
                userGesture=True,
            )
            if "exceptionDetails" in result:
                fail("clicking Enroll: %s" % result["exceptionDetails"])
            state = target.wait(
                "done or error after Enroll", lambda s: s["state"] in ("done", "error")
            )
        visits.append(state)

    credentials = target.call("WebAuthn.getCredentials", authenticatorId=authenticator)
    json.dump({"visits": visits, "credentials": credentials["credentials"]}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    try:
        main(sys.argv)
    except (OSError, RuntimeError, ValueError, websocket.WebSocketException) as e:
        fail("%s: %s" % (type(e).__name__, e))
