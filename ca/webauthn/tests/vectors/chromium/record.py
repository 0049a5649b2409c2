#!/usr/bin/env python3
"""Records one registration and one assertion made by a real headless
Chromium's virtual authenticator (DevTools protocol, CTAP2 over "usb"),
for tests/chromium.rs.

The page parses Signet's own option JSON with the browser's
PublicKeyCredential.parse{Creation,Request}OptionsFromJSON and sends back
PublicKeyCredential.toJSON(), as the enrollment page does.

    SIGNET_WRITE_VECTORS=1 cargo test -p signet-webauthn --test chromium   # writes *-options.json
    python3 ca/webauthn/tests/vectors/chromium/record.py                     # needs Debian chromium,
                                                                            # pip websocket-client
Writes origin.txt, registration.json and assertion.json next to itself.
"""

import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import websocket

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = "/usr/lib/chromium/chromium"


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<!doctype html><title>signet</title><p>signet"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    creation = json.load(open(os.path.join(HERE, "creation-options.json")))
    request = json.load(open(os.path.join(HERE, "request-options.json")))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://localhost:{server.server_address[1]}"

    profile = tempfile.mkdtemp()
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.time() + 30
        while port is None and time.time() < deadline:
            line = browser.stderr.readline()
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
        if port is None:
            sys.exit("chromium did not start")
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in targets if t["type"] == "page")
        ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        next_id = [0]

        def call(method, **params):
            next_id[0] += 1
            ws.send(json.dumps({"id": next_id[0], "method": method, "params": params}))
            while True:
                msg = json.loads(ws.recv())
                if msg.get("id") == next_id[0]:
                    if "error" in msg:
                        sys.exit(f"{method}: {msg['error']}")
                    return msg["result"]

        call("WebAuthn.enable", enableUI=False)
        call("WebAuthn.addVirtualAuthenticator", options={
            "protocol": "ctap2", "transport": "usb", "hasResidentKey": False,
            "hasUserVerification": True, "isUserVerified": True,
            "automaticPresenceSimulation": True})
        call("Page.enable")
        call("Page.navigate", url=origin + "/")
        for _ in range(100):
            state = call("Runtime.evaluate", expression="document.readyState",
                         returnByValue=True)
            if state["result"].get("value") == "complete":
                break
            time.sleep(0.05)
        script = """(async () => {
            const creation = %s, request = %s;
            const cred = await navigator.credentials.create({publicKey:
                PublicKeyCredential.parseCreationOptionsFromJSON(creation.publicKey)});
            const registration = cred.toJSON();
            request.publicKey.allowCredentials = [{type: "public-key", id: registration.rawId}];
            const got = await navigator.credentials.get({publicKey:
                PublicKeyCredential.parseRequestOptionsFromJSON(request.publicKey)});
            return JSON.stringify({registration, assertion: got.toJSON()});
        })()""" % (json.dumps(creation), json.dumps(request))
        result = call("Runtime.evaluate", expression=script, awaitPromise=True,
                      returnByValue=True)
        if "exceptionDetails" in result:
            sys.exit(f"ceremony failed: {result['exceptionDetails']}")
        out = json.loads(result["result"]["value"])
        with open(os.path.join(HERE, "origin.txt"), "w") as f:
            f.write(origin + "\n")
        for name in ("registration", "assertion"):
            with open(os.path.join(HERE, f"{name}.json"), "w") as f:
                json.dump(out[name], f, indent=2, sort_keys=True)
                f.write("\n")
        print(f"recorded at {origin}")
    finally:
        browser.kill()
        browser.wait()
        server.shutdown()


if __name__ == "__main__":
    main()
