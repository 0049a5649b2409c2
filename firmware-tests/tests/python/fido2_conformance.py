#!/usr/bin/env python3
"""FIDO2 conformance of a security key over PC/SC, driven by python-fido2.

python-fido2 (PyPI `fido2` 2.x, with `pyscard`) is an independent CTAP2
client: it frames NFCCTAP_MSG APDUs, runs the PIN/UV auth protocols and
verifies attestation and assertion signatures with its own code. This script
runs one or more scenarios against the first reader whose name contains
SIGNET_FIDO_READER and exits non-zero on the first failure.

Environment:
  SIGNET_FIDO_READER       substring of the PC/SC reader name (required)
  SIGNET_FIDO_ROOT         PEM file of the attestation root to trust; without
                           it the attestation signature is checked, the chain
                           is not
  SIGNET_FIDO_VIRTUAL=1    the key is Signet's virtual YubiKey (checks its
                           AAGUID and exact counters)
  SIGNET_FIDO_PIN          PIN of a key that already has one (default 123456)

Scenarios: info ceremony pin reset touch-denied touch-timeout client-timeout
malformed. `pin` and `reset` erase the key.
"""

import hashlib
import os
import sys
import threading
import time

from fido2.attestation import AttestationVerifier, PackedAttestation
from fido2.client import ClientError, DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.cose import CoseKey
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from fido2.hid import CTAPHID
from fido2.pcsc import CtapPcscDevice
from fido2.server import Fido2Server
from fido2.webauthn import (
    AttestationObject,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialUserEntity,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

RP_ID = "signet.example"
ORIGIN = "https://signet.example"
VIRTUAL = os.environ.get("SIGNET_FIDO_VIRTUAL") == "1"
SIGNET_AAGUID = bytes.fromhex("5169e7a36a1c4e559b3e3d5a0f8c2177")
PIN = os.environ.get("SIGNET_FIDO_PIN", "123456")
NEW_PIN = "s1gnet-new-pin"


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


def expect_ctap(err, fn, what):
    try:
        fn()
    except CtapError as e:
        check(e.code == err, f"{what} -> {err.name} (got {e.code!r})")
        return
    raise AssertionError(f"{what}: expected {err.name}, call succeeded")


def open_device():
    """Connects (powering the card up) to the reader under test."""
    name = os.environ["SIGNET_FIDO_READER"]
    deadline = time.monotonic() + 10
    while True:
        for dev in CtapPcscDevice.list_devices(name):
            return dev
        if time.monotonic() > deadline:
            raise AssertionError(f"no FIDO device in a reader matching {name!r}")
        time.sleep(0.2)


def power_cycle(dev):
    """Closing the connection unpowers the card (pyscard's default)."""
    dev.close()
    return open_device()


class Pin(UserInteraction):
    def __init__(self, pin):
        self.pin = pin

    def request_pin(self, permissions, rp_id):
        return self.pin


class RootVerifier(AttestationVerifier):
    """Trusts exactly the given root (as an RP trusts a vendor's)."""

    def __init__(self, root_der):
        super().__init__()
        self.root_der = root_der

    def ca_lookup(self, result, auth_data):
        return self.root_der


def load_root():
    path = os.environ.get("SIGNET_FIDO_ROOT")
    if not path:
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).public_bytes(Encoding.DER)


def signature_only(attestation_object, client_data_hash):
    """Without a root: python-fido2's packed verifier checks the signature."""
    PackedAttestation().verify(
        attestation_object.att_stmt, attestation_object.auth_data, client_data_hash
    )


def ensure_pin(ctap):
    client_pin = ClientPin(ctap)
    if not ctap.get_info().options.get("clientPin"):
        client_pin.set_pin(PIN)
        check(True, "clientPIN setPIN")
    return client_pin


# ---- scenarios -------------------------------------------------------------


def info(dev):
    ctap = Ctap2(dev)  # strict: non-canonical CBOR from the key fails here
    i = ctap.get_info()
    check("FIDO_2_0" in i.versions, f"versions {i.versions}")
    check(i.options.get("rk") is True and i.options.get("up") is not False, "options rk, up")
    check("clientPin" in i.options, "option clientPin present")
    check(set(i.pin_uv_protocols) >= {1, 2}, f"pinUvAuthProtocols {i.pin_uv_protocols}")
    algs = {a["alg"] for a in i.algorithms or []}
    check({-7, -8} <= algs, f"algorithms {sorted(algs)}")
    check(i.max_msg_size >= 1024, f"maxMsgSize {i.max_msg_size}")
    if VIRTUAL:
        check(bytes(i.aaguid) == SIGNET_AAGUID, "AAGUID is Signet's")


def ceremony(dev):
    root = load_root()
    verifier = RootVerifier(root) if root else signature_only
    server = Fido2Server(
        PublicKeyCredentialRpEntity(id=RP_ID, name="Signet"),
        attestation="direct",
        verify_attestation=verifier,
    )
    ctap = Ctap2(dev)
    ensure_pin(ctap)
    client = Fido2Client(dev, DefaultClientDataCollector(ORIGIN), user_interaction=Pin(PIN))
    creds = []
    for alg in (-7, -8):
        name = f"alice{-alg}"
        user = PublicKeyCredentialUserEntity(id=name.encode(), name=name, display_name=name)
        options, state = server.register_begin(
            user,
            resident_key_requirement=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        options.public_key.pub_key_cred_params[:] = [
            p for p in options.public_key.pub_key_cred_params if p.alg == alg
        ]
        result = client.make_credential(options.public_key)
        auth_data = server.register_complete(state, result)
        att = AttestationObject(result.response.attestation_object)
        check(att.fmt == "packed", f"alg {alg}: packed attestation")
        check(
            auth_data.is_user_present() and auth_data.is_user_verified(),
            f"alg {alg}: registration flags UP and UV",
        )
        check(
            auth_data.credential_data.public_key[3] == alg,
            f"alg {alg}: credential key algorithm",
        )
        if VIRTUAL:
            check(bytes(auth_data.credential_data.aaguid) == SIGNET_AAGUID, "attested AAGUID")
        creds.append(auth_data.credential_data)
        check(True, f"alg {alg}: attestation verified by python-fido2" + (" against the root" if root else ""))

    # Authenticate with the allow list, UV required; the server checks the
    # signature with the registered key.
    counters = []
    for _ in range(2):
        options, state = server.authenticate_begin(
            creds, user_verification=UserVerificationRequirement.REQUIRED
        )
        selection = client.get_assertion(options.public_key)
        response = selection.get_response(0)
        server.authenticate_complete(state, creds, response)
        counters.append(response.response.authenticator_data.counter)
        check(response.response.authenticator_data.is_user_verified(), "assertion UV")
    check(counters[1] > counters[0], f"signature counter increases {counters}")

    # Discoverable: no allow list, the key finds the user's credentials.
    options, state = server.authenticate_begin(
        user_verification=UserVerificationRequirement.REQUIRED
    )
    selection = client.get_assertion(options.public_key)
    responses = selection.get_assertions()
    check(len(responses) >= 2, f"{len(responses)} discoverable credentials for the RP")
    response = selection.get_response(0)
    server.authenticate_complete(state, creds, response)
    check(response.response.user_handle == b"alice8", "newest user's handle first")

    # A tampered client data hash must fail python-fido2's own check.
    a = ctap.get_assertion(RP_ID, b"\x01" * 32, [{"id": creds[0].credential_id, "type": "public-key"}])
    try:
        a.verify(b"\x02" * 32, creds[0].public_key)
    except Exception:
        check(True, "assertion over another client data hash is rejected")
    else:
        raise AssertionError("a wrong client data hash verified")
    a.verify(b"\x01" * 32, creds[0].public_key)
    check(True, "raw getAssertion signature verifies")


def pin(dev):
    for protocol in (PinProtocolV1(), PinProtocolV2()):
        dev = reset_now(dev)
        ctap = Ctap2(dev)
        cp = ClientPin(ctap, protocol)
        expect_ctap(CtapError.ERR.PIN_NOT_SET, lambda: cp.get_pin_token(PIN), "getPinToken without a PIN")
        cp.set_pin(PIN)
        check(cp.get_pin_retries()[0] == 8, f"v{protocol.VERSION}: 8 retries after setPIN")
        cp.change_pin(PIN, NEW_PIN)
        check(True, f"v{protocol.VERSION}: changePIN")
        expect_ctap(CtapError.ERR.PIN_INVALID, lambda: cp.get_pin_token(PIN), "old PIN refused")
        check(cp.get_pin_retries()[0] == 7, "retries counted down to 7")
        token = cp.get_pin_token(NEW_PIN, ClientPin.PERMISSION.MAKE_CREDENTIAL, RP_ID)
        check(len(token) == 32, "pinUvAuthToken with permissions")
        check(cp.get_pin_retries()[0] == 8, "a right PIN restores 8 retries")

    # Wrong PINs: 3 per power cycle, 8 in all, then blocked for good.
    left = 8
    while left > 0:
        for attempt in range(3):
            cp = ClientPin(Ctap2(dev))
            expected = (
                CtapError.ERR.PIN_BLOCKED
                if left == 1
                else CtapError.ERR.PIN_AUTH_BLOCKED
                if attempt == 2
                else CtapError.ERR.PIN_INVALID
            )
            expect_ctap(expected, lambda: cp.get_pin_token("wrong-pin"), f"wrong PIN, {left - 1} left")
            left -= 1
            check(cp.get_pin_retries()[0] == left, f"getRetries says {left}")
            if left == 0:
                break
        if left > 0:
            expect_ctap(
                CtapError.ERR.PIN_AUTH_BLOCKED,
                lambda: cp.get_pin_token(NEW_PIN),
                "right PIN refused until a power cycle",
            )
            check(cp.get_pin_retries()[0] == left, "no try spent while blocked")
            dev = power_cycle(dev)
    cp = ClientPin(Ctap2(dev))
    expect_ctap(CtapError.ERR.PIN_BLOCKED, lambda: cp.get_pin_token(NEW_PIN), "blocked PIN")
    dev = reset_now(dev)
    cp = ClientPin(Ctap2(dev))
    check(cp.get_pin_retries()[0] == 8, "reset restores the PIN counter")
    check(not Ctap2(dev).get_info().options.get("clientPin"), "reset removes the PIN")
    return dev


def reset_now(dev):
    """authenticatorReset right after a power-up, as a real key requires."""
    dev = power_cycle(dev)
    Ctap2(dev).reset()
    check(True, "authenticatorReset after power-up")
    return dev


def reset(dev):
    ctap = Ctap2(dev)
    ensure_pin(ctap)
    cred = ctap.make_credential(
        hashlib.sha256(b"c").digest(),
        {"id": RP_ID},
        {"id": b"u"},
        [{"type": "public-key", "alg": -7}],
        options={"rk": False},
    )
    dev = reset_now(dev)
    ctap = Ctap2(dev)
    cid = cred.auth_data.credential_data.credential_id
    expect_ctap(
        CtapError.ERR.NO_CREDENTIALS,
        lambda: ctap.get_assertion(RP_ID, b"\x00" * 32, [{"id": cid, "type": "public-key"}]),
        "credentials from before the reset are gone",
    )
    if VIRTUAL:
        time.sleep(10.5)
        expect_ctap(CtapError.ERR.NOT_ALLOWED, ctap.reset, "reset 10 s after power-up")
    return dev


def register_raw(ctap, **kw):
    return ctap.make_credential(
        hashlib.sha256(b"touch").digest(),
        {"id": RP_ID},
        {"id": b"u"},
        [{"type": "public-key", "alg": -7}],
        **kw,
    )


def touch_denied(dev):
    ctap = Ctap2(dev)
    expect_ctap(CtapError.ERR.OPERATION_DENIED, lambda: register_raw(ctap), "touch refused")
    client = Fido2Client(dev, DefaultClientDataCollector(ORIGIN))
    server = Fido2Server(PublicKeyCredentialRpEntity(id=RP_ID, name="Signet"))
    options, _ = server.register_begin(
        PublicKeyCredentialUserEntity(id=b"u", name="u"),
        user_verification=UserVerificationRequirement.DISCOURAGED,
    )
    try:
        client.make_credential(options.public_key)
    except ClientError as e:
        # python-fido2 maps OPERATION_DENIED to BAD_REQUEST.
        cause = getattr(e.cause, "code", None)
        check(
            e.code == ClientError.ERR.BAD_REQUEST and cause == CtapError.ERR.OPERATION_DENIED,
            f"WebAuthn client reports the refusal ({e.code.name}, {cause!r})",
        )
        return
    raise AssertionError("registration without a touch succeeded")


def touch_timeout(dev):
    ctap = Ctap2(dev)
    expect_ctap(CtapError.ERR.USER_ACTION_TIMEOUT, lambda: register_raw(ctap), "no touch in time")


def client_timeout(dev):
    # The client gives up first: it cancels its NFCCTAP_GETRESPONSE polling.
    ctap = Ctap2(dev)
    event = threading.Event()
    timer = threading.Timer(1.0, event.set)
    timer.start()
    started = time.monotonic()
    expect_ctap(CtapError.ERR.KEEPALIVE_CANCEL, lambda: register_raw(ctap, event=event), "client cancels")
    check(time.monotonic() - started < 10, "cancel ends the wait")
    # And through the WebAuthn client with a timeout option.
    client = Fido2Client(dev, DefaultClientDataCollector(ORIGIN))
    server = Fido2Server(PublicKeyCredentialRpEntity(id=RP_ID, name="Signet"))
    options, _ = server.register_begin(
        PublicKeyCredentialUserEntity(id=b"u", name="u"),
        user_verification=UserVerificationRequirement.DISCOURAGED,
    )
    opts = dict(options.public_key)
    opts["timeout"] = 1000
    try:
        client.make_credential(opts)
    except ClientError as e:
        check(e.code == ClientError.ERR.TIMEOUT, f"WebAuthn client times out ({e.code.name})")
        return
    raise AssertionError("registration without a touch succeeded")


def malformed(dev):
    def status(message):
        return dev.call(CTAPHID.CBOR, message)[0]

    cases = [
        (b"\x42", 0x01, "unknown command"),
        (b"\x01", 0x14, "makeCredential without parameters"),
        (b"\x01\xa1", 0x12, "truncated CBOR"),
        (b"\x01\x01", 0x11, "parameters not a map"),
        (b"\x01\xa1\x01\x01", 0x11, "clientDataHash of the wrong type"),
        (b"\x02\xa1\x01\x61x", 0x14, "getAssertion without clientDataHash"),
        (b"\x06\xa2\x01\x03\x02\x02", 0x02, "unknown PIN protocol"),
        (b"\x06\xa2\x01\x02\x02\x18\x40", 0x3E, "unknown clientPIN subcommand"),
    ]
    for message, want, what in cases:
        got = status(message)
        check(got == want, f"{what} -> {want:02x} (got {got:02x})")
    _, sw1, sw2 = dev.apdu_exchange(b"\x80\x10\x00")
    check((sw1, sw2) == (0x67, 0x00), f"3-byte APDU -> 6700 (got {sw1:02x}{sw2:02x})")
    _, sw1, sw2 = dev.apdu_exchange(b"\x80\x10\x00\x00\x05\x04")
    check((sw1, sw2) == (0x67, 0x00), "Lc beyond the data -> 6700")
    _, sw1, sw2 = dev.apdu_exchange(b"\x80\x10\x01\x00\x01\x04")
    check((sw1, sw2) == (0x6A, 0x86), "bad P1 -> 6A86")
    _, sw1, sw2 = dev.apdu_exchange(b"\x80\x55\x00\x00")
    check((sw1, sw2) == (0x6D, 0x00), "unknown INS -> 6D00")
    # Still alive and well.
    check(Ctap2(dev).get_info().versions, "getInfo after malformed input")


SCENARIOS = {
    "info": info,
    "ceremony": ceremony,
    "pin": pin,
    "reset": reset,
    "touch-denied": touch_denied,
    "touch-timeout": touch_timeout,
    "client-timeout": client_timeout,
    "malformed": malformed,
}


def main(names):
    unknown = [n for n in names if n not in SCENARIOS]
    if not names or unknown:
        print(__doc__, file=sys.stderr)
        return 2
    dev = open_device()
    for name in names:
        print(f"== {name}", flush=True)
        dev = SCENARIOS[name](dev) or dev
    dev.close()
    print("all passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
