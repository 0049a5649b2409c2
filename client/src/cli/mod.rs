//! The command line: one module per subcommand group.

mod agent;
mod audit;
mod login;
mod progress;
mod proxy;

use clap::{Parser, Subcommand};
use signet::audit::{AuditError, ErrorClass};

/// Exit status: the log verified, or the command succeeded.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit status: verification failed (tampering, inconsistency, a certificate not logged).
pub(crate) const EXIT_VERIFY: u8 = 1;
/// Exit status: usage error or bad input (flags, key, certificate, checkpoint files).
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status: the log could not be fetched, or local state or output could not be written.
pub(crate) const EXIT_FETCH: u8 = 3;

/// What `signet --help` ends with: where the exit statuses and the
/// failures a person meets are explained.
const TOP_HELP: &str = "\
Engineers: `signet enroll LINK` once, then `signet login` (one touch) and
plain ssh through `signet agent`. Failures are said in words, with what to
do: a wrong PIN with the tries left, a touch that timed out, the CA
unreachable, this machine's clock off the CA's (a warning), a login your
roles do not allow, a key weaker than your roles demand.

Exit status of login, enroll, status, logout and key: 0 done; 1 the CA's
answer did not prove itself; 2 usage; 3 local files; 4 the YubiKey or
security key (none, wrong PIN, PIN blocked, no touch in time); 5 the CA
unreachable or untrusted; 6 the CA refused (roles, key policy, lock,
invite, rate limit). `signet login --help` says more; `signet audit
--help`, `signet agent --help` and `signet proxy ssh --help` give theirs.";

/// Signet: short-lived, hardware-backed access certificates, and a log of
/// every one of them that anyone can verify.
#[derive(Debug, Parser)]
#[command(name = "signet", version, propagate_version = true, after_help = TOP_HELP)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    Audit(audit::AuditCommand),
    Agent(agent::AgentCommand),
    Config(agent::ConfigCommand),
    Ssh(agent::SshCommand),
    Proxy(proxy::ProxyCommand),
    Login(login::LoginArgs),
    Enroll(login::EnrollArgs),
    Status(login::StatusArgs),
    Logout(login::LogoutArgs),
    Key(login::KeyArgs),
}

/// Runs a parsed command line.
pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Audit(cmd) => audit::run(cmd),
        Command::Login(args) => login::run_login(args),
        Command::Enroll(args) => login::run_enroll(args),
        Command::Status(args) => login::run_status(args),
        Command::Logout(args) => login::run_logout(args),
        Command::Key(args) => login::run_key(args),
        Command::Agent(cmd) => agent::run_agent(cmd),
        Command::Config(cmd) => agent::run_config(cmd),
        Command::Ssh(cmd) => agent::run_ssh(cmd),
        Command::Proxy(cmd) => proxy::run(cmd),
    }
}

/// The exit status for an error that reached `main`.
pub(crate) fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(login) = e.downcast_ref::<signet::login::LoginError>() {
        use signet::login::LoginClass;
        return match login.class() {
            LoginClass::Verification => 1,
            LoginClass::Usage => 2,
            LoginClass::Local => 3,
            LoginClass::Card => 4,
            LoginClass::Unreachable => 5,
            LoginClass::Refused => 6,
        };
    }
    if let Some(tunnel) = e.downcast_ref::<signet::tunnel::TunnelError>() {
        use signet::tunnel::TunnelClass;
        return match tunnel.class() {
            TunnelClass::Usage => 2,
            TunnelClass::Local => 3,
            TunnelClass::Card => 4,
            TunnelClass::Unreachable => 5,
            TunnelClass::Refused => 6,
            _ => 7,
        };
    }
    if e.downcast_ref::<agent::AgentCliError>().is_some() {
        return EXIT_FETCH;
    }
    match e.downcast_ref::<AuditError>().map(AuditError::class) {
        Some(ErrorClass::Verification) => EXIT_VERIFY,
        Some(ErrorClass::Unavailable) => EXIT_FETCH,
        Some(ErrorClass::BadInput) | None => EXIT_USAGE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
