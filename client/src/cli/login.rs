//! `signet login`, `signet enroll`, `signet status`, `signet logout`,
//! `signet key info`: the engineer's commands.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use signet::card::{KeyPinPolicy, KeyTouchPolicy};
use signet::login::{self, LoginOptions, TransportSetting};
use signet::ui::Painter;

/// The exit statuses of the engineer's commands (also in each --help).
pub(crate) const EXIT_HELP: &str = "\
Exit status:
  0  done
  1  refused: the CA's answer did not prove itself (a request or challenge
     that does not match, certificates not for the card's key or not
     provably logged, a log key that changed); nothing was stored
  2  usage: flags, the PIN file, no profile yet
  3  local files (the profile under $XDG_CONFIG_HOME/signet, the
     certificates under $XDG_STATE_HOME/signet) could not be read or written
  4  the YubiKey or security key: none found, several without --serial,
     wrong PIN (with the tries left), PIN blocked, no touch in time (or
     the touch refused)
  5  the CA could not be reached (down, wrong address, no network), its TLS
     certificate is not trusted, or it answered something unusable
  6  the CA refused: your roles do not allow it (a login, the lifetime, or
     a key whose PIN/touch policy is weaker than they demand and that was
     not replaced), you are locked, the invite is invalid, too many
     requests";

const LOGIN_LONG: &str = "\
Get short-lived SSH and X.509 certificates for the key on your YubiKey,
with one touch.

  signet login --proxy ca.example.com:443 --user alice --ca-cert signet-root.pem

The first login needs --proxy (the CA's API address), --user and, unless the
CA's TLS certificate is publicly trusted, --ca-cert (the CA's root, which its
admins give out: `signet-ca export x509-ca`). They are remembered in
$XDG_CONFIG_HOME/signet/profile.toml (default ~/.config/signet/), so the next
`signet login` needs no flags. The first login also pins the CA's log key
(shown with its fingerprint; `--log-key` pins one you got out of band); a CA
that later serves another log key is refused.

What it does: ensures a P-256 key in PIV slot 9a (generated on the card when
missing, PIN once and touch always unless --pin-policy/--touch-policy say
otherwise); reads its attestation; asks the CA to begin; checks that the
WebAuthn challenge commits to exactly this request; asks for the touch;
checks that both certificates are for the card's key and provably in the
CA's log; only then writes the X.509 certificate into slot 9a and the SSH
certificate to $XDG_STATE_HOME/signet/ssh-cert.pub (default
~/.local/state/signet/). A failure stores nothing.

The key's policy is the CA's call: when your roles (their hardware_key)
demand a stronger PIN or touch policy than the key in slot 9a has, the CA
refuses it (key_policy_too_weak) and says what qualifies. signet login then
explains, and replaces the key with one that qualifies, keeping the old
key's policies where they do, only if Signet made that key (the profile
remembers the keys it generated), if you pass --replace-weak-key, or if you
answer yes on the terminal. A key made by another tool is never replaced
silently; the old key is destroyed when it is.

Before the touch, the CA's clock is compared with this machine's (from the
ceremony's expiry): more than 2 minutes apart is warned about, since
certificates would look not yet valid or expired — fix the clock (NTP).

The PIN: asked on the terminal (no echo), or read from the file named by
SIGNET_PIN_FILE (owner-only permissions; never pass a PIN in argv). The
security key's FIDO2 PIN, when it asks for one, comes from
SIGNET_FIDO_PIN_FILE, else SIGNET_PIN_FILE, else the terminal.
";

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum PinPolicyArg {
    Never,
    Once,
    Always,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum TouchPolicyArg {
    Never,
    Always,
    Cached,
}

/// Get certificates for the YubiKey's key, with one touch.
#[derive(Debug, Args)]
#[command(long_about = LOGIN_LONG, after_help = EXIT_HELP)]
pub(crate) struct LoginArgs {
    /// The CA's API address, HOST:PORT or https://HOST:PORT: the Signet
    /// proxy's (remembered; `signet proxy ssh` tunnels through it too).
    #[arg(long, value_name = "HOST:PORT")]
    proxy: Option<String>,
    /// Your user name at the CA (remembered).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// The YubiKey to use, when several are plugged in (remembered).
    #[arg(long, value_name = "N")]
    serial: Option<u32>,
    /// The CA's root certificate (PEM) to trust for TLS (pinned).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// The log's verifier key (a vkey line, or a file holding one), instead
    /// of trusting the one the CA serves at the first login.
    #[arg(long, value_name = "VKEY|FILE")]
    log_key: Option<String>,
    /// An SSH login to ask for (repeat; remembered; default: your user name).
    #[arg(long = "principal", value_name = "LOGIN")]
    principals: Vec<String>,
    /// How long the certificates should last (the CA caps it by role).
    #[arg(long, default_value = "8h", value_parser = humantime::parse_duration)]
    ttl: std::time::Duration,
    /// PIN policy of a key generated now [default: once; when a key too
    /// weak for your roles is replaced, the old key's if it qualifies].
    #[arg(long, value_enum)]
    pin_policy: Option<PinPolicyArg>,
    /// Touch policy of a key generated now [default: always; likewise].
    #[arg(long, value_enum)]
    touch_policy: Option<TouchPolicyArg>,
    /// Generate a new key in slot 9a even if one is there (replaces it).
    #[arg(long)]
    new_key: bool,
    /// When the CA says the key in slot 9a is weaker than your roles demand
    /// (its PIN or touch policy), replace it with one that qualifies even if
    /// Signet did not make it (the old key is destroyed). Without this flag
    /// only a key Signet made is replaced; on a terminal you are asked.
    #[arg(long)]
    replace_weak_key: bool,
    /// How to reach the security key for the touch: auto (USB HID when a
    /// FIDO key is plugged into USB, else PC/SC), usb, or pcsc (NFC readers,
    /// and keys whose FIDO2 applet answers over CCID) (remembered).
    #[arg(long, value_enum, value_name = "HOW")]
    transport: Option<TransportArg>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum TransportArg {
    Auto,
    Usb,
    Pcsc,
}

impl From<TransportArg> for TransportSetting {
    fn from(arg: TransportArg) -> Self {
        match arg {
            TransportArg::Auto => Self::Auto,
            TransportArg::Usb => Self::Usb,
            TransportArg::Pcsc => Self::Pcsc,
        }
    }
}

/// Register your security key with an invite link.
#[derive(Debug, Args)]
#[command(after_help = EXIT_HELP)]
pub(crate) struct EnrollArgs {
    /// The invite link: https://HOST[:PORT]/enroll/TOKEN.
    link: String,
    /// The CA's root certificate (PEM) to trust for TLS.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// The YubiKey to enroll, by serial, when several are present (its
    /// FIDO2 applet is asked, in the same reader as its PIV applet).
    #[arg(long, value_name = "N")]
    serial: Option<u32>,
    /// How to reach the security key: auto, usb or pcsc (as for login;
    /// default: the profile's, else auto).
    #[arg(long, value_enum, value_name = "HOW")]
    transport: Option<TransportArg>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Who you are and until when your certificates last.
#[derive(Debug, Args)]
#[command(after_help = EXIT_HELP)]
pub(crate) struct StatusArgs {
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// Remove your certificates (the key stays on the YubiKey).
#[derive(Debug, Args)]
#[command(after_help = EXIT_HELP)]
pub(crate) struct LogoutArgs {}

/// The YubiKey.
#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Serial, firmware, slot 9a's key and policies, attestation.
    #[command(after_help = EXIT_HELP)]
    Info {
        /// The YubiKey to use, when several are plugged in.
        #[arg(long, value_name = "N")]
        serial: Option<u32>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn interactive() -> bool {
    use std::io::IsTerminal as _;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn when(unix: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix))
        .to_string()
}

fn left(seconds: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(seconds)).to_string()
}

pub(crate) fn run_login(args: LoginArgs) -> anyhow::Result<()> {
    let opts = LoginOptions {
        proxy: args.proxy,
        user: args.user,
        serial: args.serial,
        ca_cert: args.ca_cert,
        log_key: args.log_key,
        principals: args.principals,
        ttl_seconds: args.ttl.as_secs().max(1),
        pin_policy: args.pin_policy.map(|p| match p {
            PinPolicyArg::Never => KeyPinPolicy::Never,
            PinPolicyArg::Once => KeyPinPolicy::Once,
            PinPolicyArg::Always => KeyPinPolicy::Always,
        }),
        touch_policy: args.touch_policy.map(|t| match t {
            TouchPolicyArg::Never => KeyTouchPolicy::Never,
            TouchPolicyArg::Always => KeyTouchPolicy::Always,
            TouchPolicyArg::Cached => KeyTouchPolicy::Cached,
        }),
        new_key: args.new_key,
        replace_weak_key: args.replace_weak_key,
        transport: args.transport.map(TransportSetting::from),
        interactive: interactive() && !args.json,
    };
    let record = login::login(&opts)?;
    if args.json {
        return print_json(&record);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let paint = Painter::stdout();
    println!(
        "{}",
        paint.ok(&format!(
            "Logged in as {} at {}.",
            record.user, record.ca_url
        ))
    );
    println!("  roles:       {}", record.roles.join(", "));
    println!("  principals:  {}", record.principals.join(", "));
    println!(
        "  valid until: {} ({} left)",
        when(record.not_after),
        left(record.not_after.saturating_sub(now))
    );
    println!(
        "  YubiKey {}:  slot 9a, PIN {}, touch {}",
        record.serial, record.pin_policy, record.touch_policy
    );
    println!(
        "  logged at:   index {} (SSH), {} (X.509), proofs verified",
        record.ssh_log_index, record.x509_log_index
    );
    println!(
        "  SSH certificate: {}",
        record.ssh_certificate_file.display()
    );
    Ok(())
}

pub(crate) fn run_enroll(args: EnrollArgs) -> anyhow::Result<()> {
    let done = login::enroll(
        &args.link,
        args.ca_cert.as_deref(),
        args.serial,
        args.transport.map(TransportSetting::from),
    )?;
    if args.json {
        return print_json(&done);
    }
    println!(
        "{}",
        Painter::stdout().ok(&format!(
            "Enrolled a security key for {} (log index {}). Next: signet login",
            done.user, done.log_index
        ))
    );
    Ok(())
}

pub(crate) fn run_status(args: StatusArgs) -> anyhow::Result<()> {
    let status = login::status()?;
    if args.json {
        return print_json(&status);
    }
    let paint = Painter::stdout();
    if !status.logged_in {
        println!("{}", paint.attention("Not logged in: run `signet login`."));
        return Ok(());
    }
    let who = format!(
        "{} at {}",
        status.user.as_deref().unwrap_or("?"),
        status.ca_url.as_deref().unwrap_or("?")
    );
    if status.expired {
        println!("{}", paint.error(&who));
    } else {
        println!("{}", paint.ok(&who));
    }
    println!("  principals:  {}", status.principals.join(", "));
    if !status.roles.is_empty() {
        println!("  roles:       {}", status.roles.join(", "));
    }
    if let Some(not_after) = status.not_after {
        if status.expired {
            println!(
                "  {}",
                paint.error(&format!(
                    "expired:     {} — run `signet login`",
                    when(not_after)
                ))
            );
        } else {
            println!(
                "  valid until: {} ({} left)",
                when(not_after),
                left(status.seconds_left)
            );
        }
    }
    if let Some(index) = status.log_index {
        println!("  log index:   {index}");
    }
    Ok(())
}

pub(crate) fn run_logout(_args: LogoutArgs) -> anyhow::Result<()> {
    let removed = login::logout()?;
    if removed.is_empty() {
        println!("No certificates were stored.");
    } else {
        let paint = Painter::stdout();
        for item in removed {
            println!("{}", paint.ok(&format!("Removed {item}")));
        }
        println!("The key in slot 9a stays; `signet login` gets new certificates.");
    }
    Ok(())
}

pub(crate) fn run_key(args: KeyArgs) -> anyhow::Result<()> {
    match args.command {
        KeyCommand::Info { serial, json } => {
            let info = login::key_info(serial)?;
            if json {
                return print_json(&info);
            }
            println!(
                "YubiKey {} (firmware {}, reader {})",
                info.serial, info.firmware, info.reader
            );
            println!("  PIN tries left: {}", info.pin_retries);
            let flag = |v: Option<bool>| match v {
                Some(true) => "DEFAULT",
                Some(false) => "changed",
                None => "unknown",
            };
            println!(
                "  PIN {}, PUK {}, management key {}{}",
                flag(info.defaults.pin),
                flag(info.defaults.puk),
                flag(info.defaults.management_key),
                if info.defaults.management_key_protected {
                    " (stored PIN-protected)"
                } else {
                    ""
                }
            );
            match &info.slot_9a {
                Some(key) => {
                    println!(
                        "  slot 9a: {:?}, PIN {}, touch {}, {}",
                        key.algorithm,
                        key.pin_policy.as_str(),
                        key.touch_policy.as_str(),
                        if key.generated {
                            "generated on the card"
                        } else {
                            "imported"
                        }
                    );
                    if let Some(sha) = &info.slot_9a_public_key_sha256 {
                        println!("  public key SHA-256: {sha}");
                    }
                }
                None => println!("  slot 9a: empty (`signet login` generates a key)"),
            }
            if let Some(att) = &info.attestation {
                println!("  attestation: {att}");
            }
            match &info.certificate_9a {
                Some(c) => println!("  certificate: {c}"),
                None => println!("  certificate: none"),
            }
            Ok(())
        }
    }
}
