# Shared helpers for Signet's deploy scripts. Sourced, not run.

# Debian packages the test suite drives as real peers.
SIGNET_TEST_PACKAGES="softhsm2 postgresql opensc openssh-server openssh-client openssl curl pkg-config libpcsclite-dev libudev-dev libclang-dev pcscd pcsc-tools vsmartcard-vpcd ykcs11 yubico-piv-tool procps python3-pip python3-dev swig chromium python3-websocket tmux python3-cryptography git"
# python-fido2 (PyPI, with pyscard, built against libpcsclite-dev) drives the
# FIDO2 applet's conformance tests: see ensure_python_fido2.
# chromium and python3-websocket: the enrollment page in a real headless
# browser with a virtual security key (ca/server/tests/chromium_enroll.rs).
# tmux: an interactive `signet login` on a real terminal (client/tests/login.rs).
# libclang-dev (bindgen) and libudev-dev: the client's USB HID transport
# (fido-hid-rs), built by default, in both lists.
# python3-cryptography: independent checks of witness cosignatures (witness/tests/verify_cosignature.py)
# and of certificates' proofs of logging (node/tests/check_proof.py; OpenSSH and
# X.509 from the real CA: ca/server/tests/verify_cert_proof.py).
# postgresql: the CA's PostgreSQL store runs against a throw-away cluster (testkit/src/postgres.rs).
# What the quickstart needs (pcscd and vsmartcard-vpcd: the demo user's virtual YubiKey).
SIGNET_RUN_PACKAGES="softhsm2 opensc openssh-server openssh-client openssl curl pkg-config libpcsclite-dev libudev-dev libclang-dev procps pcscd vsmartcard-vpcd"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages that are missing (as root, or through sudo).
ensure_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "Installing Debian packages: ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
        sudo="sudo"
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_cargo() {
    command -v cargo >/dev/null || die "Rust's cargo is needed (https://rustup.rs); install it and run again"
}

# python-fido2 2.x and pyscard, for the FIDO2 conformance tests
# (firmware-tests/tests/fido2_python.rs). Debian 12's python3 is "externally
# managed": pip needs --break-system-packages there (a test machine).
# The tests run the python3 first on PATH; where that is not Debian's (a
# python3 of its own), the Debian packages python3-websocket (the Chromium
# driver) and python3-cryptography are invisible to it, so the same modules
# come from PyPI.
ensure_python_fido2() {
    local python="${SIGNET_PYTHON:-python3}"
    "$python" -c 'import fido2.pcsc, smartcard, websocket, cryptography' 2>/dev/null && return 0
    local wanted=('fido2>=2,<3' 'pyscard>=2.2' 'websocket-client>=1.2' 'cryptography>=38')
    say "Installing python-fido2, pyscard, websocket-client and cryptography from PyPI"
    "$python" -m pip install --quiet "${wanted[@]}" 2>/dev/null \
        || "$python" -m pip install --quiet --break-system-packages "${wanted[@]}"
}

ensure_nextest() {
    if ! cargo nextest --version >/dev/null 2>&1; then
        say "Installing cargo-nextest (the test runner: one process per test)"
        cargo install --locked cargo-nextest
    fi
}
