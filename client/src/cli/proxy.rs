//! `signet proxy ssh USER@NODE[:PORT]`: the ProxyCommand that carries ssh
//! through the Signet proxy.

use clap::{Args, Subcommand};
use signet::tunnel::{self, Target};

const SSH_LONG: &str = "\
Carry one SSH connection through the Signet proxy: stdin and stdout are the
SSH stream, for OpenSSH's ProxyCommand:

  ProxyCommand signet proxy ssh %r@%h:%p

(`signet config` prints an ssh_config block with it, so plain `ssh NODE`
works.) NODE is the node's name in the CA's inventory and USER the login on
it; the proxy dials the address the inventory names for the node, so PORT
is checked but not sent.

The connection is TLS 1.3 (ALPN signet-ssh/1) to the proxy: --proxy, else
the profile's `proxy` (set by `signet login --proxy` or `signet config
--proxy`), else the CA's address. The proxy's certificate must chain to the
CA root pinned at login and name the proxy's host. Your identity is the X.509
certificate `signet login` obtained for the key in slot 9a of your YubiKey;
its signature in the handshake is made on the card (the private key never
leaves it). The PIN, when the key's policy needs one, comes from the file
SIGNET_PIN_FILE names, else the terminal; with a touch policy, \"Touch your
YubiKey…\" is printed on stderr. Everything said goes to stderr: stdout is
the SSH stream.

The proxy decides with your roles and the node's labels; a refusal is one
line on stderr with its reason and code (e.g. node_not_allowed,
login_not_allowed, user_locked), before any byte of SSH is sent.

Exit status:
  0  the tunnel ended cleanly
  2  usage: USER@NODE:PORT or --proxy malformed, no profile, no proxy
     address, no pinned CA root, no certificate for the card's key, or the
     certificate expired (run `signet login`)
  3  local files or stdin/stdout could not be used
  4  the YubiKey: none found, wrong PIN (with the tries left), PIN blocked,
     no touch in time, slot 9a empty
  5  the proxy could not be reached, its certificate is not trusted (not
     from the pinned CA root, or not for its name), or it does not speak
     signet-ssh/1
  6  the proxy refused: the tunnel (its reason on stderr), or your
     certificate at the TLS layer
  7  the open tunnel was cut: the proxy closed it without a clean end (a
     lock, your certificate's expiry, the proxy stopped) or the connection
     broke";

/// `signet proxy …`.
#[derive(Debug, Args)]
#[command(about = "Reach nodes through the Signet proxy")]
pub(crate) struct ProxyCommand {
    #[command(subcommand)]
    command: ProxySubcommand,
}

#[derive(Debug, Subcommand)]
enum ProxySubcommand {
    Ssh(SshArgs),
}

/// `signet proxy ssh`.
#[derive(Debug, Args)]
#[command(
    about = "Carry ssh through the Signet proxy (ProxyCommand signet proxy ssh %r@%h:%p)",
    long_about = SSH_LONG
)]
struct SshArgs {
    /// The login, the node's name, and the port ssh was given.
    #[arg(value_name = "USER@NODE:PORT")]
    target: String,
    /// The proxy's address, HOST:PORT, instead of the profile's.
    #[arg(long, value_name = "HOST:PORT")]
    proxy: Option<String>,
}

/// Runs `signet proxy …`.
pub(crate) fn run(cmd: ProxyCommand) -> anyhow::Result<()> {
    match cmd.command {
        ProxySubcommand::Ssh(args) => {
            let target = Target::parse(&args.target).map_err(tunnel::TunnelError::Usage)?;
            tunnel::run(&tunnel::Options {
                target,
                proxy: args.proxy,
            })?;
            Ok(())
        }
    }
}
