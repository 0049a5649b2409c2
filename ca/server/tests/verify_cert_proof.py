#!/usr/bin/env python3
"""Independent check of the proof of logging a Signet certificate carries,
with Python's standard library and `cryptography` only (nothing of Signet's
own code): the signet-cert-proof/v1 text in the OpenSSH `log-proof@signet`
extension or the X.509 log-proof extension (1.3.6.1.4.1.32473.138392655.1).

usage: verify_cert_proof.py --log-vkey VKEY [--witness VKEY ...]
                            [--threshold K] CERT_FILE

CERT_FILE is an OpenSSH certificate line (…-cert.pub) or a PEM X.509
certificate. VKEY is a C2SP signed-note verifier key: the log's (Ed25519,
type 0x01) and each witness's (cosignature/v1, type 0x04).

Checks, from the bytes up:
  1. the precertificate: for OpenSSH, the certificate blob without its
     signature and without the log-proof@signet extension; for X.509, the
     TBSCertificate without the proof extension (which must be the last);
  2. the proof text: header, index, the entry's canonical JSON (RFC 8785
     for these values) with certificate.bytes emptied, inclusion hashes, a
     blank line, the checkpoint note;
  3. the entry, with the precertificate put back, is canonical and records
     the precertificate's SHA-256, serial and principals of the certificate;
  4. the entry's leaf hash (RFC 9162: SHA-256(0x00 || entry)) is at `index`
     of the checkpoint's tree (RFC 9162 inclusion proof);
  5. the checkpoint is signed by the log key (Ed25519 over the note body)
     and cosigned (cosignature/v1) by at least K of the witnesses.

Prints "ok index I size N cosigned-by A,B" and exits 0, or "fail: reason"
and exits 1.
"""
import argparse
import base64
import hashlib
import json
import struct
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PROOF_EXTENSION = "log-proof@signet"
X509_PROOF_OID = "1.3.6.1.4.1.32473.138392655.1"
HEADER = "signet-cert-proof/v1"


class Fail(Exception):
    pass


# --- signed notes (c2sp.org/signed-note, tlog-checkpoint, tlog-cosignature)


def parse_vkey(vkey, want_type):
    name, key_id_hex, material = vkey.strip().split("+", 2)
    raw = base64.b64decode(material, validate=True)
    if len(raw) != 33 or raw[0] != want_type:
        raise Fail("vkey %s is not of type 0x%02x with an Ed25519 key" % (name, want_type))
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if key_id.hex() != key_id_hex:
        raise Fail("vkey %s: key id does not match the key" % name)
    return name, key_id, Ed25519PublicKey.from_public_bytes(raw[1:])


def parse_note(note):
    body, sep, sigs = note.rpartition("\n\n")
    if not sep or not note.endswith("\n"):
        raise Fail("the checkpoint is not a signed note")
    body += "\n"
    lines = []
    for line in sigs.rstrip("\n").split("\n"):
        if not line.startswith("\u2014 "):
            raise Fail("bad signature line %r" % line)
        name, b64 = line[2:].split(" ", 1)
        lines.append((name, base64.b64decode(b64, validate=True)))
    return body, lines


def check_note(note, log_vkey, witnesses, threshold):
    body, sigs = parse_note(note)
    log_name, log_id, log_key = log_vkey
    signed = False
    for name, sig in sigs:
        if name == log_name and sig[:4] == log_id:
            try:
                log_key.verify(sig[4:], body.encode())
            except InvalidSignature:
                raise Fail("the log key's signature on the checkpoint does not verify")
            signed = True
    if not signed:
        raise Fail("the checkpoint is not signed by the log key %s" % log_name)
    cosigners = []
    for w_name, w_id, w_key in witnesses:
        for name, sig in sigs:
            if name != w_name or sig[:4] != w_id:
                continue
            if len(sig) != 4 + 8 + 64:
                raise Fail("cosignature by %s is not 72 bytes" % name)
            (timestamp,) = struct.unpack(">Q", sig[4:12])
            message = b"cosignature/v1\ntime %d\n" % timestamp + body.encode()
            try:
                w_key.verify(sig[12:], message)
            except InvalidSignature:
                raise Fail("cosignature by %s does not verify" % name)
            if name not in cosigners:
                cosigners.append(name)
    if len(cosigners) < threshold:
        raise Fail(
            "%d of the witnesses must cosign, %d did (%s)"
            % (threshold, len(cosigners), ", ".join(cosigners) or "none")
        )
    lines = body.split("\n")
    if lines[0] != log_name:
        raise Fail("the checkpoint's origin %r is not the log key's name" % lines[0])
    size = int(lines[1])
    if str(size) != lines[1]:
        raise Fail("the checkpoint's size is not canonical")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32:
        raise Fail("the checkpoint's root hash is not 32 bytes")
    return size, root, sorted(cosigners)


# --- RFC 9162 inclusion proof


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index, size, leaf, path):
    if index >= size:
        raise Fail("index %d is not below the checkpoint's size %d" % (index, size))
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Fail("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Fail("the inclusion proof is too short")
    return r


# --- OpenSSH certificates (PROTOCOL.certkeys)


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise Fail("the certificate is truncated")
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


# Public key fields between the nonce and the serial, per certificate type.
KEY_FIELDS = {
    b"ssh-ed25519-cert-v01@openssh.com": 1,
    b"ecdsa-sha2-nistp256-cert-v01@openssh.com": 2,
    b"ecdsa-sha2-nistp384-cert-v01@openssh.com": 2,
    b"ssh-rsa-cert-v01@openssh.com": 2,
}


def ssh_certificate(blob):
    """The proof text, the precertificate, the serial and the principals."""
    r = Reader(blob)
    cert_type = r.string()
    if cert_type not in KEY_FIELDS:
        raise Fail("unsupported certificate type %r" % cert_type)
    r.string()  # nonce
    for _ in range(KEY_FIELDS[cert_type]):
        r.string()
    serial = r.u64()
    r.u32()  # user or host
    r.string()  # key id
    principals_blob = r.string()
    r.u64()
    r.u64()
    r.string()  # critical options
    ext_start = r.pos
    extensions = r.string()
    ext_end = r.pos
    r.string()  # reserved
    r.string()  # signature key
    signed_end = r.pos
    r.string()  # signature
    if r.pos != len(blob):
        raise Fail("bytes after the signature")
    principals = []
    pr = Reader(principals_blob)
    while pr.pos < len(principals_blob):
        principals.append(pr.string().decode())
    # Extensions: (name, data) pairs in order; drop the proof.
    er = Reader(extensions)
    kept, proof = b"", None
    while er.pos < len(extensions):
        name, data = er.string(), er.string()
        if name.decode() == PROOF_EXTENSION:
            if proof is not None:
                raise Fail("the proof extension is repeated")
            inner = Reader(data)
            proof = inner.string().decode()
            if inner.pos != len(data):
                raise Fail("bytes after the proof in its extension")
        else:
            kept += ssh_string(name) + ssh_string(data)
    if proof is None:
        raise Fail("the certificate carries no %s extension" % PROOF_EXTENSION)
    precertificate = blob[:ext_start] + ssh_string(kept) + blob[ext_end:signed_end]
    return proof, precertificate, str(serial), principals


# --- X.509 (DER)


def der_read(data, pos):
    """(tag, header length, content length) of the element at pos."""
    tag = data[pos]
    first = data[pos + 1]
    if first < 0x80:
        return tag, 2, first
    n = first & 0x7F
    return tag, 2 + n, int.from_bytes(data[pos + 2 : pos + 2 + n], "big")


def der_children(data):
    out, pos = [], 0
    while pos < len(data):
        tag, hl, cl = der_read(data, pos)
        out.append((tag, data[pos : pos + hl + cl], data[pos + hl : pos + hl + cl]))
        pos += hl + cl
    return out


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def der_oid(oid):
    parts = [int(p) for p in oid.split(".")]
    out = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(enc))
    return der(0x06, out)


def x509_certificate(pem):
    cert = x509.load_pem_x509_certificate(pem)
    tbs = cert.tbs_certificate_bytes
    tag, hl, cl = der_read(tbs, 0)
    fields = der_children(tbs[hl : hl + cl])
    if not fields or fields[-1][0] != 0xA3:
        raise Fail("the TBS has no extensions")
    (ext_tag, _, ext_seq), = der_children(fields[-1][2])
    extensions = der_children(ext_seq)
    last = der_children(extensions[-1][2])
    if last[0][1] != der_oid(X509_PROOF_OID):
        raise Fail("the proof extension is missing or not the last one")
    if len(last) != 2:
        raise Fail("the proof extension is critical or malformed")
    value = der_children(last[1][2])  # OCTET STRING content: a UTF8String
    if len(value) != 1 or value[0][0] != 0x0C:
        raise Fail("the proof extension is not a UTF8String")
    proof = value[0][2].decode("utf-8")
    if len(extensions) < 2:
        raise Fail("the proof extension is the only extension")
    rest = b"".join(e[1] for e in extensions[:-1])
    new_fields = [f[1] for f in fields[:-1]] + [der(0xA3, der(0x30, rest))]
    precertificate = der(0x30, b"".join(new_fields))
    return proof, precertificate, format(cert.serial_number, "x"), None


# --- the proof


def parse_proof(text):
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise Fail("the proof has no checkpoint")
    lines = head.split("\n")
    if len(lines) < 3 or lines[0] != HEADER:
        raise Fail("the proof does not start with %s" % HEADER)
    if not lines[1].startswith("index "):
        raise Fail("no index line")
    index = int(lines[1][len("index ") :])
    if not lines[2].startswith("entry {"):
        raise Fail("no entry line")
    entry = lines[2][len("entry ") :]
    path = []
    for line in lines[3:]:
        h = base64.b64decode(line, validate=True)
        if len(h) != 32:
            raise Fail("an inclusion hash is not 32 bytes")
        path.append(h)
    return index, entry, path, note


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--log-vkey", required=True)
    parser.add_argument("--witness", action="append", default=[])
    parser.add_argument("--threshold", type=int, default=0)
    parser.add_argument("cert")
    args = parser.parse_args()
    try:
        log_vkey = parse_vkey(args.log_vkey, 0x01)
        witnesses = [parse_vkey(w, 0x04) for w in args.witness]
        data = open(args.cert, "rb").read()
        if b"-----BEGIN CERTIFICATE-----" in data:
            proof, pre, serial, principals = x509_certificate(data)
        else:
            fields = data.decode().split()
            if len(fields) < 2 or not fields[0].endswith("-cert-v01@openssh.com"):
                raise Fail("not an OpenSSH certificate line")
            proof, pre, serial, principals = ssh_certificate(base64.b64decode(fields[1]))
        index, entry_text, path, note = parse_proof(proof)
        entry = json.loads(entry_text)
        if canonical(entry) != entry_text:
            raise Fail("the proof's entry is not canonical JSON")
        cert_field = entry.get("certificate") or {}
        if cert_field.get("bytes") != "" or cert_field.get("form") != "precertificate":
            raise Fail("the proof's entry is not a detached precertificate entry")
        if cert_field.get("sha256") != hashlib.sha256(pre).hexdigest():
            raise Fail("the entry records another precertificate (SHA-256 differs)")
        # OpenSSH serials are decimal, X.509 ones hex (leading zeros aside).
        logged = cert_field.get("serial", "")
        if principals is None:
            logged, serial = logged.lower().lstrip("0"), serial.lower().lstrip("0")
        if logged != serial:
            raise Fail("the entry records serial %r, the certificate has %r" % (logged, serial))
        if principals is not None and entry.get("principals", []) != principals:
            raise Fail("the entry's principals are not the certificate's")
        cert_field["bytes"] = base64.b64encode(pre).decode()
        leaf = hashlib.sha256(b"\x00" + canonical(entry).encode("utf-8")).digest()
        size, root, cosigners = check_note(note, log_vkey, witnesses, args.threshold)
        if root_from_inclusion(index, size, leaf, path) != root:
            raise Fail("the inclusion proof does not lead to the checkpoint's root")
    except Fail as e:
        print("fail: %s" % e)
        sys.exit(1)
    except (ValueError, KeyError, IndexError, UnicodeDecodeError) as e:
        print("fail: malformed: %s" % e)
        sys.exit(1)
    print("ok index %d size %d cosigned-by %s" % (index, size, ",".join(cosigners)))


if __name__ == "__main__":
    main()
