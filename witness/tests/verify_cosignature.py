#!/usr/bin/env python3
"""Independent check of a witness cosignature (c2sp.org/tlog-cosignature,
cosignature/v1), with Python's standard library and `cryptography` only.

usage: verify_cosignature.py VKEY NOTE_FILE

VKEY is the witness's vkey (<name>+<hex key id>+base64(0x04 || key)).
Prints "ok <name> time <timestamp>" and exits 0 if NOTE_FILE (a signed
checkpoint) carries a valid cosignature by that key; exits 1 otherwise.
"""
import base64
import hashlib
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(why):
    print("fail: " + why)
    sys.exit(1)


def main():
    vkey, path = sys.argv[1], sys.argv[2]
    name, key_id_hex, material = vkey.split("+", 2)
    raw = base64.b64decode(material, validate=True)
    if len(raw) != 33 or raw[0] != 0x04:
        fail("not a cosignature/v1 vkey")
    public = raw[1:]
    key_id = hashlib.sha256(name.encode() + b"\n" + b"\x04" + public).digest()[:4]
    if key_id.hex() != key_id_hex:
        fail("key id does not match the key")
    key = Ed25519PublicKey.from_public_bytes(public)

    note = open(path, "rb").read().decode("utf-8")
    body, sep, sigs = note.rpartition("\n\n")
    if not sep:
        fail("not a signed note")
    body += "\n"
    for line in sigs.rstrip("\n").split("\n"):
        if not line.startswith("\u2014 "):
            fail("bad signature line")
        line_name, b64 = line[2:].split(" ", 1)
        sig = base64.b64decode(b64, validate=True)
        if line_name != name or sig[:4] != key_id:
            continue
        if len(sig) != 4 + 8 + 64:
            fail("cosignature is not 72 bytes")
        (timestamp,) = struct.unpack(">Q", sig[4:12])
        if timestamp > 2**63 - 1:
            fail("timestamp too large")
        message = b"cosignature/v1\ntime %d\n" % timestamp + body.encode("utf-8")
        try:
            key.verify(sig[12:], message)
        except InvalidSignature:
            fail("signature does not verify")
        print("ok %s time %d" % (name, timestamp))
        return
    fail("no cosignature by " + name)


main()
