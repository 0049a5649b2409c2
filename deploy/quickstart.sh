#!/usr/bin/env bash
# Signet quickstart: from a fresh Debian 12 machine to a real `ssh` login with
# a short-lived certificate signed by a key that never left an HSM.
#
# What it does, step by step (each step explains itself on screen):
#   1. installs what is missing (SoftHSM2, OpenSSH, OpenSC) and builds Signet;
#   2. creates a SoftHSM2 token for the CA (random PINs in files, mode 0600,
#      never on a command line);
#   3. runs the key ceremony: four CA keys generated inside the token;
#   4. signs a 10-minute OpenSSH user certificate for a demo user;
#   5. starts a throw-away sshd on a loopback port that trusts only the CA,
#      logs in with plain `ssh`, and stops it again;
#   6. exports the signing log and verifies it as an auditor would, proving
#      the certificate just used is in it.
#
# Idempotent: run it again and it reuses the token and keys (and says so).
# State lives in $SIGNET_DEMO_DIR (default ~/.local/share/signet-demo).
# Non-interactive; CI=true changes nothing but the colours.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh
repo="$(pwd)"

demo="${SIGNET_DEMO_DIR:-$HOME/.local/share/signet-demo}"

say "1/7 Installing what is missing and building Signet"
ensure_packages $SIGNET_RUN_PACKAGES
ensure_cargo
cargo build --release --quiet -p signet-ca -p signet
ca="$repo/target/release/signet-ca"
signet="$repo/target/release/signet"
note "built $ca and $signet"

say "2/7 A SoftHSM2 token for the CA in $demo"
ca_port=""
for candidate in $(seq 18441 18499); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then ca_port=$candidate; break; fi
done
[ -n "$ca_port" ] || die "no free port between 18441 and 18499"
mkdir -p "$demo/tokens" && chmod 700 "$demo"
export SOFTHSM2_CONF="$demo/softhsm2.conf"
cat > "$SOFTHSM2_CONF" <<CONF
directories.tokendir = $demo/tokens
objectstore.backend = file
log.level = ERROR
CONF
umask 077
for pin in so-pin hsm-pin; do
    [ -s "$demo/$pin" ] || od -An -N8 -tu8 /dev/urandom | tr -d ' \n' | cut -c1-12 > "$demo/$pin"
done
sed -e "s|^data_dir = .*|data_dir = \"$demo/data\"|" \
    -e "s|^pin_file = .*|pin_file = \"$demo/hsm-pin\"|" \
    -e "s|^token_label = .*|token_label = \"signet-demo\"|" \
    -e "s|^listen = .*|listen = \"127.0.0.1:$ca_port\"|" \
    -e "s|^rp_id = .*|rp_id = \"localhost\"|" \
    -e "s|^origin = \"https://ca.example.com\"|origin = \"https://localhost:$ca_port\"|" \
    -e "s|/usr/share/signet/yubico-fido-roots.pem|$repo/deploy/attestation/yubico-fido-roots.pem|" \
    deploy/signet-ca.example.toml > "$demo/signet-ca.toml"
config="$demo/signet-ca.toml"
if [ -e "$demo/.token-initialised" ]; then
    note "token 'signet-demo' exists already; reusing it"
else
    "$ca" token init --config "$config" --so-pin-file "$demo/so-pin"
    touch "$demo/.token-initialised"
fi
note "PINs are in $demo/so-pin and $demo/hsm-pin (mode 0600); the config names the file, not the PIN"

say "3/7 Key ceremony: CA keys are generated inside the token and never leave it"
"$ca" init --config "$config"

say "4/7 A 10-minute certificate for the demo user 'alice', login $(id -un)"
[ -f "$demo/alice" ] || ssh-keygen -q -t ed25519 -N "" -C alice@signet-demo -f "$demo/alice"
"$ca" sign --config "$config" ssh-user --user alice --principal "$(id -un)" --ttl 10m \
    --public-key "$demo/alice.pub" > "$demo/alice-cert.pub"
ssh-keygen -L -f "$demo/alice-cert.pub" | sed 's/^/    /' >&2

say "5/7 A throw-away sshd on loopback that trusts only this CA"
"$ca" export --config "$config" ssh-user-ca > "$demo/user-ca.pub"
[ -f "$demo/host_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -f "$demo/host_ed25519"
port=""
for candidate in $(seq 22220 22299); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
done
[ -n "$port" ] || die "no free port between 22220 and 22299"
cat > "$demo/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $demo/host_ed25519
PidFile $demo/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile none
TrustedUserCAKeys $demo/user-ca.pub
PermitRootLogin prohibit-password
StrictModes no
CONF
[ "$(id -u)" -eq 0 ] && mkdir -p /run/sshd
/usr/sbin/sshd -f "$demo/sshd_config" -E "$demo/sshd.log"
trap 'kill "$(cat "$demo/sshd.pid" 2>/dev/null)" 2>/dev/null || true' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
note "sshd on 127.0.0.1:$port, TrustedUserCAKeys = the CA's public key, no authorized_keys at all"
output="$(ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -i "$demo/alice" -o CertificateFile="$demo/alice-cert.pub" -p "$port" \
    "$(id -un)@127.0.0.1" 'echo "hello from $(hostname) as $(id -un), certificate accepted"')"
note "ssh says: $output"
grep -o 'Accepted publickey.*' "$demo/sshd.log" | tail -n 1 | sed 's/^/    sshd logged: /' >&2 || true

say "6/7 The CA daemon: roles from git, an invite, HTTPS with a logged TLS certificate"
"$ca" roles apply --config "$config" deploy/roles/ 2>&1 | sed 's/^/    /' >&2
"$ca" export --config "$config" x509-ca > "$demo/x509-ca.pem"
"$ca" serve --config "$config" 2> "$demo/signet-ca.log" &
ca_pid=$!
trap 'kill "$ca_pid" 2>/dev/null || true; kill "$(cat "$demo/sshd.pid" 2>/dev/null)" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -sS --fail --cacert "$demo/x509-ca.pem" "https://localhost:$ca_port/v1/health" > "$demo/health.json" 2>/dev/null && break
    sleep 0.1
done
[ -s "$demo/health.json" ] || die "signet-ca serve did not come up; see $demo/signet-ca.log"
note "GET https://localhost:$ca_port/v1/health (trusting only the CA's root): $(cat "$demo/health.json")"
link="$("$ca" users invite bob --config "$config" --ttl 1h 2>/dev/null)"
note "an enrollment link for bob (the admin command went through the daemon's socket):"
note "  $link"
note "bob opens it in a browser and touches his security key; after that every"
note "certificate he gets needs a touch (docs/api.md)"
kill -TERM "$ca_pid" && wait "$ca_pid" || die "signet-ca serve did not stop cleanly on SIGTERM"
trap 'kill "$(cat "$demo/sshd.pid" 2>/dev/null)" 2>/dev/null || true' EXIT
note "stopped the daemon (SIGTERM: requests drained, admin socket removed)"

say "7/7 An auditor verifies the signing log without trusting the CA"
rm -rf "$demo/log-export"
"$ca" log export --config "$config" "$demo/log-export" > "$demo/log.vkey"
note "pinned log key: $(cat "$demo/log.vkey")"
XDG_STATE_HOME="$demo/auditor" "$signet" audit verify --quiet --log "$demo/log-export" --key "$demo/log.vkey" 2>&1 | sed 's/^/    /' >&2
XDG_STATE_HOME="$demo/auditor" "$signet" audit prove --log "$demo/log-export" --key "$demo/log.vkey" \
    --cert "$demo/alice-cert.pub" 2>&1 | sed 's/^/    /' >&2

say "Done. The certificate expires in 10 minutes; it and every other issuance are in the verified log."
