#!/usr/bin/env bash
# Signet quickstart: from a fresh Debian 12 machine to plain `ssh NODE`
# through the Signet proxy, with a certificate whose key never left a
# (virtual) YubiKey, signed by keys that never left an HSM — and a lock that
# cuts the session.
#
# What it does, step by step (each step explains itself on screen):
#   1. installs what is missing and builds Signet;
#   2. creates a SoftHSM2 token for the CA (random PINs in files, mode 0600,
#      never on a command line) and runs the key ceremony: four CA keys
#      generated inside the token;
#   3. applies roles and the node inventory from files, as from git;
#   4. starts the CA daemon (HTTPS, its proxy listener, an admin socket);
#   5. joins an access proxy with a one-time token and starts it: the one
#      port engineers reach;
#   6. joins a demo node: its host certificate from the CA, and an sshd that
#      trusts only the CA and checks every certificate's proof of logging;
#   7. plugs in a virtual YubiKey (PIV + FIDO2, its own private pcscd),
#      enrolls the demo user 'alice' with an invite link, and runs
#      `signet login` through the proxy: a key generated on the card,
#      certificates after a touch;
#   8. `signet config` writes the ssh_config block, and plain `ssh demo-node`
#      goes through the proxy;
#   9. a session stays open; `signet-ca lock --user alice` cuts it at once,
#      new sessions are refused, `unlock` lets her back;
#  10. an auditor verifies the signing log without trusting the CA.
#
# Idempotent: run it again and it reuses the token, the CA keys and the
# card (and says so). State lives in $SIGNET_DEMO_DIR (default
# ~/.local/share/signet-demo). Everything it starts listens on loopback only
# and is stopped when it ends, also on failure or Ctrl-C. Non-interactive;
# CI=true changes nothing but the colours. SIGNET_PROFILE=debug uses a debug
# build instead of a release build (quicker to build, slower to run).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh
repo="$(pwd)"

demo="${SIGNET_DEMO_DIR:-$HOME/.local/share/signet-demo}"
profile="${SIGNET_PROFILE:-release}"
login_name="$(id -un)"

# Everything started below is recorded here and stopped on exit.
pids=()
cleanup() {
    local status=$?
    [ -n "${card_fd_open:-}" ] && exec 8>&- # the card stops when its stdin ends
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
    [ -f "$demo/sshd.pid" ] && kill "$(cat "$demo/sshd.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    [ "$status" -eq 0 ] || note "stopped everything the quickstart started; logs are in $demo/*.log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    local candidate
    for candidate in $(seq "$1" "$(($1 + 99))"); do
        case " ${taken:-} " in *" $candidate "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
            taken="${taken:-} $candidate"
            echo "$candidate"
            return 0
        fi
    done
    die "no free port between $1 and $(($1 + 99))"
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq $((seconds * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    die "$what did not come up in ${seconds}s"
}

say "1/10 Installing what is missing and building Signet ($profile)"
ensure_packages $SIGNET_RUN_PACKAGES
ensure_cargo
build_flags=(--quiet)
[ "$profile" = release ] && build_flags+=(--release)
cargo build "${build_flags[@]}" -p signet-ca -p signet -p signet-proxy -p signet-node
cargo build "${build_flags[@]}" -p signet-firmware-tests --bin virtual-yubikey
bin="$repo/target/$profile"
ca="$bin/signet-ca" signet="$bin/signet" proxy="$bin/signet-proxy" node="$bin/signet-node"
note "built signet-ca, signet-proxy, signet-node, signet and virtual-yubikey in $bin"

say "2/10 A SoftHSM2 token for the CA, and the key ceremony inside it"
mkdir -p "$demo/tokens" && chmod 700 "$demo"
umask 077
ca_port=$(free_port 18441) feed_port=$(free_port 18541) proxy_port=$(free_port 18641) ssh_port=$(free_port 22220)
export SOFTHSM2_CONF="$demo/softhsm2.conf"
cat > "$SOFTHSM2_CONF" <<CONF
directories.tokendir = $demo/tokens
objectstore.backend = file
log.level = ERROR
CONF
for pin in so-pin hsm-pin; do
    [ -s "$demo/$pin" ] || od -An -N8 -tu8 /dev/urandom | tr -d ' \n' | cut -c1-12 > "$demo/$pin"
done
# The demo user's YubiKey PIN (the virtual card's factory PIN; its FIDO2 PIN
# is set to the same). Signet reads PINs from the file SIGNET_PIN_FILE names.
printf '123456\n' > "$demo/yubikey-pin"

# The virtual YubiKey's attestation root is made on its first start; the CA
# trusts it (and only it) for PIV and FIDO2 attestation in this demo.
mkfifo -m 600 "$demo/card.stdin" 2>/dev/null || [ -p "$demo/card.stdin" ]
"$bin/virtual-yubikey" --private-pcscd --serial 15151515 --firmware 5.7.1 \
    --attestation-root "$demo/card-attestation" --state "$demo/card.json" \
    --fido-pin-file "$demo/yubikey-pin" < "$demo/card.stdin" > "$demo/card.env" 2> "$demo/card.log" &
pids+=($!)
exec 8> "$demo/card.stdin"
card_fd_open=1
wait_for 30 "the virtual YubiKey (see $demo/card.log)" grep -q '^PCSCLITE_CSOCK_NAME=' "$demo/card.env"
export "$(grep '^PCSCLITE_CSOCK_NAME=' "$demo/card.env")"
card_root="$demo/card-attestation/attestation-root.pem"

proxy_origin="https://localhost:$proxy_port"
sed -e "s|^data_dir = .*|data_dir = \"$demo/data\"|" \
    -e "s|^pin_file = .*|pin_file = \"$demo/hsm-pin\"|" \
    -e "s|^token_label = .*|token_label = \"signet-demo\"|" \
    -e "s|^listen = .*|listen = \"127.0.0.1:$ca_port\"|" \
    -e "s|^# public_url = .*|public_url = \"$proxy_origin\"|" \
    -e "s|^# proxy_listen = .*|proxy_listen = \"127.0.0.1:$feed_port\"|" \
    -e "s|^proxy_names = .*|proxy_names = [\"localhost\"]|" \
    -e "s|^rp_id = .*|rp_id = \"localhost\"|" \
    -e "s|^origin = \"https://ca.example.com\"|origin = \"$proxy_origin\"|" \
    -e "s|/usr/share/signet/yubico-fido-roots.pem|$card_root|" \
    -e "s|^yubico = true|yubico = false\nroots = [\"$card_root\"]|" \
    deploy/signet-ca.example.toml > "$demo/signet-ca.toml"
config="$demo/signet-ca.toml"
if [ -e "$demo/.token-initialised" ]; then
    note "token 'signet-demo' exists already; reusing it"
else
    "$ca" token init --config "$config" --so-pin-file "$demo/so-pin"
    touch "$demo/.token-initialised"
fi
note "PINs are in $demo/so-pin and $demo/hsm-pin (mode 0600); the config names the file, not the PIN"
"$ca" init --config "$config"

say "3/10 Roles and nodes from files (in production: a git repository, reviewed)"
mkdir -p "$demo/policy"
cat > "$demo/policy/roles.yaml" <<YAML
# The demo role: log in as $login_name on nodes labelled env=demo, with a key
# generated on a hardware key whose touch and PIN policies the attestation proves.
kind: role
name: demo
allow:
  logins: [$login_name]
  node_labels: { env: [demo] }
options:
  max_session_ttl: 1h
  hardware_key: touch_and_pin
  session_mfa: true
---
kind: user
name: alice
roles: [demo]
YAML
cat > "$demo/policy/nodes.yaml" <<YAML
# The demo node: the sshd this script starts on 127.0.0.1:$ssh_port.
kind: node
name: demo-node
address: 127.0.0.1:$ssh_port
labels: { env: demo }
YAML
"$ca" roles apply --config "$config" "$demo/policy/roles.yaml" 2>&1 | sed 's/^/    /' >&2
"$ca" nodes apply --config "$config" "$demo/policy/nodes.yaml" 2>&1 | sed 's/^/    /' >&2

say "4/10 The CA daemon: HTTPS on 127.0.0.1:$ca_port, the proxies' mutual-TLS feed on :$feed_port"
"$ca" export --config "$config" x509-ca > "$demo/x509-ca.pem"
"$ca" serve --config "$config" 2> "$demo/signet-ca.log" &
pids+=($!)
wait_for 60 "signet-ca serve (see $demo/signet-ca.log)" \
    curl -sS --fail --cacert "$demo/x509-ca.pem" "https://localhost:$ca_port/v1/health"
note "up; it answers engineers only through the proxy, and admins on its unix socket"

say "5/10 The access proxy joins with a one-time token and serves on $proxy_origin"
mkdir -p "$demo/proxy"
if [ ! -s "$demo/proxy/proxy.pem" ]; then
    "$ca" proxies invite --config "$config" --name edge-1 > "$demo/proxy/join-token"
fi
sed -e "s|0.0.0.0:443|127.0.0.1:$proxy_port|" \
    -e "s|^public_names = .*|public_names = [\"localhost\"]|" \
    -e "s|https://ca.internal.example:8441|https://localhost:$ca_port|" \
    -e "s|https://ca.internal.example:8442|https://localhost:$feed_port|" \
    -e "s|/etc/signet/x509-ca.pem|$demo/x509-ca.pem|" \
    -e "s|/var/lib/signet-proxy/|$demo/proxy/|" \
    -e "s|/etc/signet/proxy-join-token|$demo/proxy/join-token|" \
    deploy/proxy.example.toml > "$demo/proxy/proxy.toml"
if [ ! -s "$demo/proxy/proxy.pem" ]; then
    "$proxy" join --config "$demo/proxy/proxy.toml" 2>&1 | sed 's/^/    /' >&2
    rm -f "$demo/proxy/join-token"
else
    note "joined before; its certificate renews itself"
fi
"$proxy" serve --config "$demo/proxy/proxy.toml" 2> "$demo/signet-proxy.log" &
pids+=($!)
wait_for 60 "signet-proxy serve (see $demo/signet-proxy.log)" \
    curl -sS --fail --cacert "$demo/x509-ca.pem" "$proxy_origin/v1/health"
note "one TLS port: SSH tunnels (ALPN signet-ssh/1) and the CA's API (http/1.1), the proxy's"
note "certificate names 'localhost' and chains to the CA's root; it holds no CA key and no store"

say "6/10 The node 'demo-node' joins: a host certificate from the CA, an sshd on 127.0.0.1:$ssh_port"
mkdir -p "$demo/node"
[ -f "$demo/node/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$demo/node/ssh_host_ed25519_key"
"$ca" nodes invite --config "$config" --out "$demo/node/join-token" demo-node >/dev/null
# The node check (signet-node principals, run by sshd for every certificate
# login) refuses certificates whose proof of logging does not verify. sshd
# runs it only from root-owned directories, as an unprivileged user: as
# root the quickstart installs it under /var/lib/signet-demo; otherwise
# sshd trusts the CA's signature alone.
check_dir=/var/lib/signet-demo
principals_args=()
if [ "$(id -u)" -eq 0 ]; then
    install -d -o root -g root -m 0755 "$check_dir"
    install -o root -g root -m 0755 "$node" "$check_dir/signet-node"
    log_key="$(curl -sS --fail --cacert "$demo/x509-ca.pem" "https://localhost:$ca_port/v1/ca" |
        grep -o '"vkey":"[^"]*"' | head -n1 | cut -d'"' -f4)"
    [ -n "$log_key" ] || die "GET /v1/ca named no log vkey"
    printf 'log_key = "%s"\n\n[witnesses]\nthreshold = 0\n' "$log_key" > "$demo/node/node.toml"
    install -o root -g root -m 0644 "$demo/node/node.toml" "$check_dir/node.toml"
    principals_args=(--node-config "$check_dir/node.toml" --principals-command "$check_dir/signet-node"
        --principals-user nobody)
fi
"$node" join --ca "https://localhost:$ca_port" --ca-root "$demo/x509-ca.pem" \
    --token-file "$demo/node/join-token" --host-key "$demo/node/ssh_host_ed25519_key" \
    --sshd-config-snippet "$demo/node/signet.conf" --renew-config "$demo/node/renew.toml" \
    --user-ca-file "$demo/node/user-ca.pub" "${principals_args[@]}" 2> "$demo/node/join.out" \
    | sed 's/^/    /' >&2 || { cat "$demo/node/join.out" >&2; die "signet-node join failed"; }
rm -f "$demo/node/join-token"
grep '^@cert-authority' "$demo/node/join.out" > "$demo/known_hosts" ||
    grep -h '^@cert-authority' "$demo/node/join.out" "$demo/node/signet.conf" > "$demo/known_hosts" || true
if [ "${#principals_args[@]}" -eq 0 ]; then
    sed -i '/^AuthorizedPrincipalsCommand/d' "$demo/node/signet.conf"
    note "not root: sshd checks the CA's signature; the node check needs root (docs/node.md)"
fi
cat > "$demo/node/sshd_config" <<CONF
Include $demo/node/signet.conf
Port $ssh_port
ListenAddress 127.0.0.1
PidFile $demo/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile none
PermitRootLogin prohibit-password
StrictModes no
CONF
[ "$(id -u)" -eq 0 ] && mkdir -p /run/sshd
/usr/sbin/sshd -f "$demo/node/sshd_config" -E "$demo/sshd.log"
wait_for 10 "sshd" bash -c "exec 3<>/dev/tcp/127.0.0.1/$ssh_port"
note "sshd: HostCertificate from the CA's host key, TrustedUserCAKeys = the CA's user key, no authorized_keys"
sed 's/^/    drop-in: /' "$demo/node/signet.conf" >&2

say "7/10 alice's YubiKey (virtual, serial 15151515): enroll with an invite, then signet login"
export XDG_CONFIG_HOME="$demo/alice/config" XDG_STATE_HOME="$demo/alice/state"
export XDG_RUNTIME_DIR="$demo/alice/runtime" SIGNET_PIN_FILE="$demo/yubikey-pin"
mkdir -p "$XDG_CONFIG_HOME" "$XDG_STATE_HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
if [ -e "$demo/.alice-enrolled" ]; then
    note "alice enrolled this card before; skipping the invite"
else
    link="$("$ca" users invite alice --config "$config" --ttl 1h 2>/dev/null)"
    note "the invite link (an admin sends it to alice): $link"
    "$signet" enroll "$link" --ca-cert "$demo/x509-ca.pem" 2>&1 | sed 's/^/    /' >&2
    touch "$demo/.alice-enrolled"
fi
note "signet login through the proxy: the card makes the key in slot 9a (it never leaves),"
note "the CA checks its attestation, the touch signs a challenge bound to the request"
"$signet" login --proxy "localhost:$proxy_port" --user alice --ca-cert "$demo/x509-ca.pem" \
    --principal "$login_name" --ttl 1h 2>&1 | sed 's/^/    /' >&2

say "8/10 signet config, then plain ssh demo-node through the proxy"
"$signet" agent 2> "$demo/agent.log" &
pids+=($!)
wait_for 20 "signet agent (see $demo/agent.log)" test -S "$XDG_RUNTIME_DIR/signet/agent.sock"
{
    printf 'Host *\n    BatchMode yes\n    StrictHostKeyChecking yes\n    LogLevel ERROR\n'
    [ -s "$demo/known_hosts" ] && printf '    UserKnownHostsFile %s\n' "$demo/known_hosts"
    printf '\n'
    "$signet" config --proxy "localhost:$proxy_port" --hosts demo-node
} > "$demo/ssh_config"
sed 's/^/    ssh_config: /' "$demo/ssh_config" >&2
output="$(ssh -F "$demo/ssh_config" demo-node 'echo "hello from $(hostname) as $(id -un)"')"
note "ssh demo-node says: $output"
grep -o '"event":"accept".*' "$demo/signet-proxy.log" | tail -n 1 | cut -c1-200 | sed 's/^/    proxy logged: /' >&2 || true
grep -o 'Accepted publickey.*' "$demo/sshd.log" | tail -n 1 | sed 's/^/    sshd logged: /' >&2 || true

say "9/10 A session stays open; signet-ca lock --user alice cuts it"
ssh -F "$demo/ssh_config" demo-node 'echo open; exec sleep 120' > "$demo/session.out" 2> "$demo/session.err" &
session=$!
pids+=($session)
wait_for 30 "the open session" grep -q open "$demo/session.out"
note "ssh demo-node 'sleep 120' is running (pid $session)"
start=$(date +%s%N)
"$ca" lock --config "$config" --user alice --reason "quickstart: access revoked" 2>&1 | sed 's/^/    /' >&2
for _ in $(seq 100); do kill -0 "$session" 2>/dev/null || break; sleep 0.05; done
kill -0 "$session" 2>/dev/null && die "the locked session is still open after 5 s"
note "the session closed $(( ($(date +%s%N) - start) / 1000000 )) ms after the lock (the lock command included)"
if ssh -F "$demo/ssh_config" demo-node true 2> "$demo/refused.err"; then
    die "a new session was accepted while alice is locked"
fi
note "a new ssh is refused: $(grep -m1 -o 'user_locked.*' "$demo/refused.err" || head -n1 "$demo/refused.err")"
"$ca" unlock --config "$config" --user alice 2>&1 | sed 's/^/    /' >&2
wait_for 10 "alice's access after unlock" ssh -F "$demo/ssh_config" demo-node true
note "unlocked: ssh demo-node works again"

say "10/10 An auditor verifies the signing log without trusting the CA"
"$ca" export --config "$config" log-key > "$demo/log-key.pem"
# The log's origin, from the [log] table (the [webauthn] table has an
# origin too, later in the file).
log_origin=$(awk -F'"' '/^\[/{t=$0} t=="[log]" && /^origin *=/{print $2; exit}' "$config")
note "the auditor pins the log key (from the HSM, handed over out of band) and the log's"
note "name, $log_origin, and reads the log through the proxy, as anyone may: $proxy_origin/log/"
XDG_STATE_HOME="$demo/auditor" "$signet" audit verify --quiet --log "$proxy_origin/log/" \
    --key "$demo/log-key.pem" --origin "$log_origin" --tls-ca "$demo/x509-ca.pem" 2>&1 | sed 's/^/    /' >&2

say "Done: alice reached demo-node with plain ssh through the proxy; her key never left the card, the CA's never left the HSM, and every certificate is in the verified log."
