#!/usr/bin/env python3
"""Makes the cosignature/v1 test vectors in this directory, independently of
signet-log: Python's standard library and `cryptography` only, following
c2sp.org/signed-note and c2sp.org/tlog-cosignature to the letter.

Run from this directory: python3 make_vectors.py (output is deterministic).
"""
import base64
import hashlib
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ORIGIN = "example.com/behind-the-sofa"
BODY = ORIGIN + "\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def key(label):
    sk = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())
    pk = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return sk, pk


def key_id(name, alg, pk):
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + pk).digest()[:4]


def vkey(name, alg, pk):
    return "%s+%s+%s" % (name, key_id(name, alg, pk).hex(), base64.b64encode(bytes([alg]) + pk).decode())


def line(name, raw):
    return "\u2014 %s %s\n" % (name, base64.b64encode(raw).decode())


log_sk, log_pk = key("signet test vector: log key")
log_sig = line(ORIGIN, key_id(ORIGIN, 1, log_pk) + log_sk.sign(BODY.encode()))

lines = []
for n, (name, ts) in enumerate([("witness.example.com/w1", 1679315147), ("witness.example.com/w2", 1700000000)], 1):
    sk, pk = key("signet test vector: witness %d" % n)
    msg = b"cosignature/v1\ntime %d\n" % ts + BODY.encode()
    lines.append(line(name, key_id(name, 4, pk) + struct.pack(">Q", ts) + sk.sign(msg)))
    with open("w%d.vkey" % n, "w") as f:
        f.write(vkey(name, 4, pk) + "\n")

with open("log.vkey", "w") as f:
    f.write(vkey(ORIGIN, 1, log_pk) + "\n")
with open("cosigned.checkpoint", "w") as f:
    f.write(BODY + "\n" + log_sig + "".join(lines))
