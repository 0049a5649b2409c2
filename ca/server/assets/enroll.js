// Signet enrollment: runs navigator.credentials.create with the options the
// CA gives for this invite, and posts the new credential back. No framework,
// nothing loaded from elsewhere.
"use strict";

(function () {
  const token = decodeURIComponent(location.pathname.split("/").pop() || "");
  const statusEl = document.getElementById("status");
  const button = document.getElementById("enroll");
  const who = document.getElementById("who");

  function say(text, state) {
    statusEl.textContent = text;
    statusEl.dataset.state = state;
  }

  function fromB64url(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const pad = b64.length % 4 ? "=".repeat(4 - (b64.length % 4)) : "";
    const bin = atob(b64 + pad);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    const json = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(json.message || ("the CA answered " + response.status));
      error.code = json.code;
      throw error;
    }
    return json;
  }

  let begun = null;

  async function begin() {
    begun = await post("/v1/enroll/begin", { token: token });
    who.textContent = "This invite enrolls a security key for " + begun.user + ".";
    button.disabled = false;
  }

  async function enroll() {
    button.disabled = true;
    try {
      if (!begun || Date.now() / 1000 > begun.expires_at) await begin();
      const options = begun.webauthn.publicKey;
      const publicKey = Object.assign({}, options, {
        challenge: fromB64url(options.challenge),
        user: Object.assign({}, options.user, { id: fromB64url(options.user.id) }),
        excludeCredentials: (options.excludeCredentials || []).map((c) =>
          Object.assign({}, c, { id: fromB64url(c.id) })),
      });
      say("Touch your security key…", "waiting");
      const credential = await navigator.credentials.create({ publicKey: publicKey });
      const response = credential.response;
      const body = {
        id: credential.id,
        rawId: toB64url(credential.rawId),
        type: credential.type,
        response: {
          clientDataJSON: toB64url(response.clientDataJSON),
          attestationObject: toB64url(response.attestationObject),
        },
      };
      if (typeof response.getTransports === "function") {
        body.response.transports = response.getTransports();
      }
      const ceremony = begun.ceremony;
      begun = null;
      const done = await post("/v1/enroll/finish", {
        ceremony: ceremony,
        token: token,
        credential: body,
      });
      say("Enrolled. Your security key is registered for " + done.user +
          " (log entry " + done.log_index + "). You can close this page.", "done");
    } catch (e) {
      begun = null;
      const name = e && e.name ? e.name : "";
      if (name === "NotAllowedError") {
        say("The security key was not touched in time, or the browser refused. Press Enroll to try again.", "error");
      } else if (name === "InvalidStateError") {
        say("This security key is already enrolled for you.", "error");
      } else {
        say((e && e.message) || String(e), "error");
      }
      button.disabled = false;
    }
  }

  button.addEventListener("click", enroll);
  if (!window.PublicKeyCredential) {
    say("This browser cannot use security keys (WebAuthn).", "error");
    return;
  }
  begin().catch((e) => {
    who.textContent = "";
    say((e && e.message) || String(e), "error");
  });
})();
