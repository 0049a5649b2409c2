#!/bin/sh
# Makes the certificates of tests/contents.rs that say who they are for
# (OpenSSH key ids, X.509 CN and subjectAltName), with the reference tools.
# Run from this directory; the keys are throw-away and not kept.
#
#   sh generate.sh
#
# Each X.509 certificate is self-signed: the checks under test read the
# names, not the signature. The serial of each is fixed (-set_serial).
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# OpenSSH: one CA, one user key, one host key.
ssh-keygen -q -t ed25519 -N '' -C ca -f "$tmp/ca"
ssh-keygen -q -t ed25519 -N '' -C user -f "$tmp/user"
ssh-keygen -q -t ed25519 -N '' -C host -f "$tmp/host"
sshcert() { # ssh-keygen -s ARGS...; writes KEY-cert.pub
    ssh-keygen -q -s "$tmp/ca" -V 20260101000000Z:20260102000000Z "$@"
}
sshcert -I "user=alice serial=42" -n root,deploy -z 42 "$tmp/user.pub"
mv "$tmp/user-cert.pub" ssh-user-alice.pub
# The key id names someone other than the entry's subject.
sshcert -I "user=mallory serial=42" -n root,deploy -z 42 "$tmp/user.pub"
mv "$tmp/user-cert.pub" ssh-user-keyid-mallory.pub
sshcert -h -I "host=node1.example serial=7" -n node1.example,node1 -z 7 "$tmp/host.pub"
mv "$tmp/host-cert.pub" ssh-host-node1.pub
# No principals: OpenSSH accepts it for any host name (no entry may log one).
sshcert -h -I "host=node1.example serial=8" -z 8 "$tmp/host.pub"
mv "$tmp/host-cert.pub" ssh-host-no-principals.pub

# X.509: P-256 keys; extensions as the CA writes them for a client
# (CA:FALSE, SAN URIs) unless the file is about another shape.
x509() { # OUT SERIAL SUBJECT [-addext EXT]...
    out=$1
    serial=$2
    subj=$3
    shift 3
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$tmp/key.pem" -out "$out" -days 1 -set_serial "$serial" \
        -subj "$subj" "$@" 2>/dev/null
}
client() { # OUT SERIAL SUBJECT SAN
    x509 "$1" "$2" "$3" -addext "basicConstraints=critical,CA:FALSE" \
        -addext "subjectAltName=$4"
}
client x509-alice.pem 0x1001 /CN=alice URI:signet://example.com/user/alice
client x509-alice-role-device.pem 0x1002 /CN=alice \
    URI:signet://example.com/user/alice,URI:signet://example.com/role/prod-sre,URI:signet://example.com/device/12345678
# Lies: a name relying parties read that is not the entry's.
client x509-san-mallory.pem 0x1003 /CN=alice URI:signet://example.com/user/mallory
client x509-cn-mallory.pem 0x1004 /CN=mallory URI:signet://example.com/user/alice
client x509-two-users.pem 0x1005 /CN=alice \
    URI:signet://example.com/user/alice,URI:signet://example.com/user/bob
client x509-extra-dns.pem 0x1006 /CN=alice URI:signet://example.com/user/alice,DNS:admin.example.com
client x509-other-uri.pem 0x1007 /CN=alice URI:signet://example.com/user/alice,URI:https://example.com/user/mallory
client x509-two-domains.pem 0x1008 /CN=alice \
    URI:signet://example.com/user/alice,URI:signet://other.example/role/prod-sre
client x509-cn-and-o.pem 0x1009 /CN=alice/O=Admins URI:signet://example.com/user/alice
client x509-escaped.pem 0x100a /CN=%61lice URI:signet://example.com/user/%61lice
client x509-upper-scheme.pem 0x100b /CN=alice URI:signet://example.com/user/alice,URI:SIGNET://example.com/user/mallory
x509 x509-no-san.pem 0x100c /CN=alice -addext "basicConstraints=critical,CA:FALSE"
x509 x509-ca-alice.pem 0x100d /CN=alice -addext "basicConstraints=critical,CA:TRUE" \
    -addext "subjectAltName=URI:signet://example.com/user/alice"
# A root, as `signet-ca init` logs it (admin-sign, subject = its DN).
x509 x509-root.pem 0x100e "/CN=Signet Test Root/O=Example" -addext "basicConstraints=critical,CA:TRUE,pathlen:0"
