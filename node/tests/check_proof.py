#!/usr/bin/env python3
"""An independent check of a Signet OpenSSH certificate's proof of logging.

Written from docs/log-format.md alone, with the Python standard library and
`cryptography` (Debian python3-cryptography), to check the Rust code against
a second reading of the format:

  check_proof.py CERT_PUB LOG_VKEY THRESHOLD [WITNESS_VKEY ...]

It reads the OpenSSH certificate (the -cert.pub line), parses the SSH wire
format itself, rebuilds the precertificate (the signed part without the
log-proof@signet extension), reads the signet-cert-proof/v1 text, puts the
precertificate back into the entry, checks its sha256, re-encodes the entry
canonically, hashes the leaf, recomputes the root from the inclusion proof
(RFC 9162), and verifies the checkpoint's Ed25519 note signature by the log
key and the witnesses' cosignature/v1 signatures against the threshold.

Prints `ok index=<n> size=<n> cosigned-by=<names>` and exits 0, or prints
the reason and exits 1.
"""

import base64
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PROOF_EXTENSION = b"log-proof@signet"
PROOF_HEADER = "signet-cert-proof/v1"


class Refused(Exception):
    pass


def b64(s):
    """Strict standard base64: re-encodes to itself."""
    raw = base64.b64decode(s, validate=True)
    if base64.b64encode(raw).decode() != s:
        raise Refused("non-canonical base64")
    return raw


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise Refused("truncated SSH encoding")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def string(self):
        return self.take(self.u32())


def ssh_string(b):
    return struct.pack(">I", len(b)) + b


# Public key fields after the nonce, by certificate key type (PROTOCOL.certkeys).
KEY_FIELDS = {
    b"ssh-ed25519-cert-v01@openssh.com": 1,
    b"ecdsa-sha2-nistp256-cert-v01@openssh.com": 2,
    b"ecdsa-sha2-nistp384-cert-v01@openssh.com": 2,
    b"ecdsa-sha2-nistp521-cert-v01@openssh.com": 2,
    b"ssh-rsa-cert-v01@openssh.com": 2,
}


def precertificate_and_proof(blob):
    """The signed part without the proof extension, and the proof text."""
    r = Reader(blob)
    key_type = r.string()
    if key_type not in KEY_FIELDS:
        raise Refused("unsupported certificate type %r" % key_type)
    r.string()  # nonce
    for _ in range(KEY_FIELDS[key_type]):
        r.string()
    r.u64()  # serial
    if r.u32() != 1:
        raise Refused("not a user certificate")
    r.string()  # key id
    r.string()  # principals
    r.u64(), r.u64()  # validity
    critical = Reader(r.string())
    while critical.pos < len(critical.data):
        if critical.string() == PROOF_EXTENSION:
            raise Refused("log proof in a critical option")
        critical.string()
    ext_start = r.pos
    extensions = Reader(r.string())
    ext_end = r.pos
    kept, proof = b"", None
    while extensions.pos < len(extensions.data):
        name, data = extensions.string(), extensions.string()
        if name == PROOF_EXTENSION:
            if proof is not None:
                raise Refused("two proof extensions")
            proof = Reader(data).string().decode("utf-8")
        else:
            kept += ssh_string(name) + ssh_string(data)
    if proof is None:
        raise Refused("no log-proof@signet extension")
    r.string()  # reserved
    r.string()  # signature key
    signed_end = r.pos
    r.string()  # signature
    if r.pos != len(blob):
        raise Refused("trailing bytes after the signature")
    precert = blob[:ext_start] + ssh_string(kept) + blob[ext_end:signed_end]
    return precert, proof


def canonical(value):
    """Signet's canonical JSON: sorted keys, no spaces, UTF-8, integers."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Refused("duplicate JSON key")
    return dict(pairs)


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(leaf, index, size, proof):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        raise Refused("index %d not below size %d" % (index, size))
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Refused("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Refused("inclusion proof too short")
    return r


def parse_vkey(vkey, want_type):
    name, key_id, material = vkey.split("+", 2)
    raw = b64(material)
    if raw[0] != want_type or len(raw) != 33:
        raise Refused("vkey %s: wrong type" % name)
    computed = hashlib.sha256(name.encode() + b"\n" + raw[:1] + raw[1:]).digest()[:4]
    if computed.hex() != key_id:
        raise Refused("vkey %s: key id does not match" % name)
    return name, computed, Ed25519PublicKey.from_public_bytes(raw[1:])


def check(cert_line, log_vkey, threshold, witness_vkeys):
    blob = b64(cert_line.split()[1])
    precert, proof = precertificate_and_proof(blob)

    head, note = proof.split("\n\n", 1)
    lines = head.split("\n")
    if lines[0] != PROOF_HEADER:
        raise Refused("not a %s proof" % PROOF_HEADER)
    if not lines[1].startswith("index ") or not lines[1][6:].isdigit():
        raise Refused("bad index line")
    index = int(lines[1][6:])
    if str(index) != lines[1][6:]:
        raise Refused("index not canonical")
    if not lines[2].startswith("entry "):
        raise Refused("bad entry line")
    detached = lines[2][6:]
    hashes = [b64(h) for h in lines[3:]]
    if any(len(h) != 32 for h in hashes):
        raise Refused("inclusion hash of the wrong length")

    entry = json.loads(detached, object_pairs_hook=no_duplicates)
    if canonical(entry).decode() != detached:
        raise Refused("entry not canonical")
    cert = entry["certificate"]
    if cert.get("form") != "precertificate" or cert["bytes"] != "":
        raise Refused("not a detached precertificate entry")
    if cert["sha256"] != hashlib.sha256(precert).hexdigest():
        raise Refused("the proof is for another entry")
    if entry.get("principals") is None:
        raise Refused("entry names no principals")
    cert["bytes"] = base64.b64encode(precert).decode()
    leaf = hashlib.sha256(b"\x00" + canonical(entry)).digest()

    text, sig_block = note.rsplit("\n\n", 1)
    text += "\n"
    origin, size, root_b64 = text.split("\n")[:3]
    size = int(size)
    root = b64(root_b64)
    if root_from_inclusion(leaf, index, size, hashes) != root:
        raise Refused("inclusion does not verify")

    signatures = []
    for line in sig_block.rstrip("\n").split("\n"):
        if not line.startswith("\u2014 "):
            raise Refused("bad signature line")
        name, sig = line[2:].split(" ", 1)
        signatures.append((name, b64(sig)))

    log_name, log_id, log_key = parse_vkey(log_vkey, 0x01)
    if origin != log_name:
        raise Refused("checkpoint of another log")
    log_ok = False
    for name, sig in signatures:
        if name == log_name and sig[:4] == log_id:
            try:
                log_key.verify(sig[4:], text.encode())
                log_ok = True
            except InvalidSignature:
                raise Refused("bad log signature")
    if not log_ok:
        raise Refused("not signed by the log")

    cosigned = []
    for vkey in witness_vkeys:
        name, key_id, key = parse_vkey(vkey, 0x04)
        for sig_name, sig in signatures:
            if sig_name != name or sig[:4] != key_id:
                continue
            if len(sig) != 4 + 8 + 64:
                raise Refused("malformed cosignature by %s" % name)
            (timestamp,) = struct.unpack(">Q", sig[4:12])
            message = b"cosignature/v1\ntime %d\n" % timestamp + text.encode()
            try:
                key.verify(sig[12:], message)
            except InvalidSignature:
                raise Refused("bad cosignature by %s" % name)
            if name not in cosigned:
                cosigned.append(name)
    if len(cosigned) < threshold:
        raise Refused("cosigned by %d of %d witnesses needed" % (len(cosigned), threshold))
    return index, size, cosigned


def main():
    if len(sys.argv) < 4:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        cert_line = f.read()
    try:
        index, size, cosigned = check(cert_line, sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    except (Refused, ValueError, KeyError, TypeError, IndexError) as e:
        print("refused: %s" % e)
        return 1
    print("ok index=%d size=%d cosigned-by=%s" % (index, size, ",".join(cosigned)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
