//! `signet agent`, `signet config`, `signet ssh`: plain OpenSSH with the
//! Signet certificate and the key on the YubiKey.

use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use signet::agent::card::CardKey;
use signet::agent::identity::Identity;
use signet::agent::paths::answers;
use signet::agent::server::stderr_log;
use signet::agent::{Agent, AgentError, AgentPaths};
use signet::profile::{self, Profile};

const AGENT_LONG: &str = "\
Run an ssh-agent that offers your Signet SSH certificate and signs with the
key in slot 9a of your YubiKey.

The agent offers exactly one identity: the certificate `signet login` stored
(it reads the file again on every request, so a new login needs no restart).
It opens the YubiKey only while it signs, so gpg and ykman keep working.
When the key's touch policy asks for it, the agent's log says
\"Touch your YubiKey…\". The PIN, when the key needs one, is read from the
file SIGNET_PIN_FILE names, for each signature (the agent keeps no PIN).

When the certificate is missing or has expired, the agent offers nothing,
refuses to sign, and says so: \"your Signet certificate expired at …; run
`signet login`\".

The socket is $XDG_RUNTIME_DIR/signet/agent.sock (a 0700 directory; the
socket is 0600, and only clients of your own uid are answered). A lock file
beside it keeps a second agent from taking over the socket.

Use it:
  eval \"$(signet agent --daemon)\"      # starts it in the background
  ssh host                             # or: signet ssh host
  signet config >> ~/.ssh/config       # every ssh uses it

Exit status: 0 served (or started) and stopped cleanly; 2 bad usage or the
runtime directory is unsafe; 3 another agent runs (foreground) or the agent
could not start.";

/// `signet agent [--daemon]`.
#[derive(Debug, Args)]
#[command(
    about = "Run an ssh-agent that offers the Signet certificate and signs on the YubiKey",
    long_about = AGENT_LONG
)]
pub(crate) struct AgentCommand {
    /// Start the agent in the background and print the lines for `eval`
    /// (SSH_AUTH_SOCK=…; export SSH_AUTH_SOCK; …). When an agent already
    /// runs, prints its lines instead.
    #[arg(long)]
    daemon: bool,
    /// The background agent itself (what --daemon starts).
    #[arg(long, hide = true, conflicts_with = "daemon")]
    detached: bool,
}

/// `signet config`.
#[derive(Debug, Args)]
#[command(
    about = "Print an ssh_config block: plain ssh to your nodes through the Signet proxy",
    long_about = "\
Print an ssh_config block that makes plain `ssh NODE` (and scp, rsync, git
over ssh) go through the Signet proxy, authenticated by your YubiKey:

  signet config --hosts '*.internal web-* db-*' >> ~/.ssh/config
  ssh web-1

For the hosts it names (--hosts, ssh_config patterns; default: every host)
the block sets
  ProxyCommand <this signet> proxy ssh %r@%h:%p   the TLS tunnel through the
                                                  proxy (signet proxy ssh --help)
  IdentityAgent <the signet agent's socket>       offers the SSH certificate,
                                                  signs with its key on the card
and, when the profile knows the CA's SSH host CA
($XDG_CONFIG_HOME/signet/ssh-host-ca.pub, stored by `signet login`), writes
an `@cert-authority *` line for it to $XDG_CONFIG_HOME/signet/known_hosts and
names that file, so nodes with host certificates from the CA are known
without asking.

The proxy is the profile's (`signet login --proxy HOST:PORT`, else the CA's
address); --proxy HOST:PORT changes it in the profile. Without a proxy
address the block has no ProxyCommand, only the agent lines. --json prints
the same as a JSON object (with the block as `ssh_config`).

Start the agent once per session: eval \"$(signet agent --daemon)\"."
)]
pub(crate) struct ConfigCommand {
    /// The hosts to route through the proxy: ssh_config patterns,
    /// separated by spaces or commas (e.g. '*.internal web-*').
    #[arg(long, value_name = "PATTERNS", default_value = "*")]
    hosts: String,
    /// The Signet proxy's address, HOST:PORT (remembered in the profile).
    #[arg(long, value_name = "HOST:PORT")]
    proxy: Option<String>,
    /// Print a JSON object instead of the block.
    #[arg(long)]
    json: bool,
}

/// `signet ssh [ssh arguments]`.
#[derive(Debug, Args)]
#[command(
    about = "Run ssh with the Signet agent and certificate (starts the agent if needed)",
    long_about = "\
Run the system ssh with IdentityAgent set to the Signet agent (started in the
background when it does not run; it offers the Signet certificate), and the
CA's host CA known when the profile has it. Every
argument is passed to ssh unchanged:
  signet ssh -p 2222 alice@host uname -a

Exit status: ssh's."
)]
pub(crate) struct SshCommand {
    /// Arguments for ssh.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

/// Errors of this module that need a distinct exit status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AgentCliError {
    /// The agent did not come up, or another holds the socket.
    #[error("{0}")]
    Start(String),
}

/// What the agent serves from the profile.
struct Setup {
    paths: AgentPaths,
    certificate: PathBuf,
    user: String,
    serial: Option<u32>,
}

fn setup() -> anyhow::Result<Setup> {
    let paths = AgentPaths::from_env()?;
    let profile = Profile::load()?;
    let certificate = profile::ssh_certificate_path()?;
    let user = profile
        .as_ref()
        .map(|p| p.user.clone())
        .filter(|u| !u.is_empty())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    Ok(Setup {
        paths,
        certificate,
        user,
        serial: profile.and_then(|p| p.serial),
    })
}

/// A path as a POSIX shell word (single-quoted when it needs quoting).
fn shell_word(path: &Path) -> String {
    let s = path.display().to_string();
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%".contains(&b))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn eval_lines(socket: &Path, pid: &str) -> String {
    let sock = shell_word(socket);
    format!(
        "SSH_AUTH_SOCK={sock}; export SSH_AUTH_SOCK;\nSSH_AGENT_PID={pid}; export SSH_AGENT_PID;\n"
    )
}

fn the_pid(lock: &Path) -> String {
    std::fs::read_to_string(lock)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Runs `signet agent`.
pub(crate) fn run_agent(cmd: AgentCommand) -> anyhow::Result<()> {
    let setup = setup()?;
    setup.paths.prepare()?;
    if cmd.daemon {
        let pid = start_daemon(&setup, true)?;
        print!("{}", eval_lines(&setup.paths.socket, &pid));
        return Ok(());
    }
    let lock = setup.paths.lock().map_err(|e| match e {
        AgentError::AlreadyRunning { .. } => AgentCliError::Start(e.to_string()).into(),
        other => anyhow::Error::from(other),
    })?;
    let listener = setup.paths.bind(&lock)?;
    let log = stderr_log();
    let key = Arc::new(CardKey::new(setup.serial, Arc::clone(&log)));
    let agent = Agent::new(
        setup.certificate.clone(),
        &setup.user,
        key,
        Arc::clone(&log),
    )?;
    if !cmd.detached {
        print!(
            "{}",
            eval_lines(&setup.paths.socket, &std::process::id().to_string())
        );
        let _ = std::io::stdout().flush();
    }
    log(&format!(
        "serving {} (certificate {})",
        setup.paths.socket.display(),
        setup.certificate.display()
    ));
    if let Some(problem) = agent.identity().problem() {
        log(&problem);
    }
    let served = agent.serve(listener);
    // Only this agent (holding the lock) may remove the socket.
    let _ = std::fs::remove_file(&setup.paths.socket);
    log("stopped");
    drop(lock);
    Ok(served?)
}

/// Starts the agent in the background (or finds the running one) and
/// returns its pid. `tell` prints the certificate's problem, if any, on
/// stderr: the person starting the agent learns it now, not at the first ssh.
fn start_daemon(setup: &Setup, tell: bool) -> anyhow::Result<String> {
    if tell {
        if let Some(problem) =
            Identity::load(&setup.certificate, std::time::SystemTime::now()).problem()
        {
            eprintln!(
                "signet agent: {}",
                signet::ui::Painter::stderr().error(&problem.to_string())
            );
        }
    }
    // Probe the lock: held means an agent runs (or is starting).
    match setup.paths.lock() {
        Ok(lock) => drop(lock),
        Err(AgentError::AlreadyRunning { pid, socket }) => {
            if wait_until(|| answers(&socket), Duration::from_secs(5)) {
                if tell {
                    eprintln!("signet agent: already running (pid {pid})");
                }
                return Ok(pid);
            }
            return Err(AgentCliError::Start(format!(
                "an agent (pid {pid}) holds {} but does not answer on {}",
                setup.paths.lock.display(),
                socket.display()
            ))
            .into());
        }
        Err(e) => return Err(e.into()),
    }
    let exe = std::env::current_exe().context("finding the signet executable")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&setup.paths.log)
        .with_context(|| format!("opening {}", setup.paths.log.display()))?;
    // A new session: the agent outlives this terminal and gets none of its
    // signals. util-linux's setsid when present (it execs, same pid), else
    // at least a process group of its own.
    let setsid = Path::new("/usr/bin/setsid");
    let mut command = if setsid.exists() {
        let mut c = Command::new(setsid);
        c.arg(&exe);
        c
    } else {
        let mut c = Command::new(&exe);
        c.process_group(0);
        c
    };
    command
        .args(["agent", "--detached"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let mut child = command.spawn().context("starting the agent")?;
    let pid = child.id().to_string();
    let mut exited = None;
    let up = wait_until(
        || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return true;
            }
            answers(&setup.paths.socket) && the_pid(&setup.paths.lock) == pid
        },
        Duration::from_secs(10),
    );
    if let Some(status) = exited {
        let text = std::fs::read_to_string(&setup.paths.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(AgentCliError::Start(format!(
            "the agent exited at start-up ({status}); its log ({}) says:\n{}",
            setup.paths.log.display(),
            tail.join("\n")
        ))
        .into());
    }
    if !up {
        bail!(AgentCliError::Start(format!(
            "the agent (pid {pid}) did not answer on {} within 10 s; see {}",
            setup.paths.socket.display(),
            setup.paths.log.display()
        )));
    }
    Ok(pid)
}

fn wait_until(mut done: impl FnMut() -> bool, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The CA's SSH host CA, when the profile has it: writes the
/// `@cert-authority` known_hosts file and returns its path.
fn host_ca_known_hosts() -> anyhow::Result<Option<PathBuf>> {
    let dir = profile::config_dir()?;
    let source = dir.join("ssh-host-ca.pub");
    let text = match std::fs::read_to_string(&source) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", source.display())),
    };
    let key = ssh_key::PublicKey::from_openssh(text.trim()).with_context(|| {
        format!(
            "{} is not an OpenSSH public key line (`signet-ca export ssh-host-ca` prints one)",
            source.display()
        )
    })?;
    let mut key = key;
    key.set_comment("signet host CA");
    let line = format!(
        "@cert-authority * {}\n",
        key.to_openssh().context("encoding the host CA key")?
    );
    let known_hosts = dir.join("known_hosts");
    profile::write_private(&known_hosts, line.as_bytes())?;
    Ok(Some(known_hosts))
}

fn config_quote(path: &Path) -> String {
    format!("\"{}\"", path.display())
}

/// The host patterns of `--hosts`: ssh_config patterns (names, `*`, `?`,
/// a leading `!`), nothing that could end the line or start another
/// keyword.
fn host_patterns(text: &str) -> anyhow::Result<Vec<String>> {
    let patterns: Vec<String> = text
        .split([' ', ','])
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    if patterns.is_empty() {
        bail!(signet::tunnel::TunnelError::Usage(
            "--hosts: name at least one host pattern".into()
        ));
    }
    for pattern in &patterns {
        let body = pattern.strip_prefix('!').unwrap_or(pattern);
        let ok = !body.is_empty()
            && body.len() <= 255
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"*?.-_@:[]".contains(&b));
        if !ok {
            bail!(signet::tunnel::TunnelError::Usage(format!(
                "--hosts: {pattern:?} is not an ssh host pattern (letters, digits, * ? . - _ @ : [ ], a leading !)"
            )));
        }
    }
    Ok(patterns)
}

/// The ProxyCommand line: this executable (absolute), shell-quoted since
/// ssh runs the line with the shell, `%` doubled since ssh expands it.
fn proxy_command(exe: &Path) -> String {
    format!("{} proxy ssh %r@%h:%p", shell_word(exe).replace('%', "%%"))
}

/// Runs `signet config`.
pub(crate) fn run_config(cmd: ConfigCommand) -> anyhow::Result<()> {
    let hosts = host_patterns(&cmd.hosts)?;
    let setup = setup()?;
    let mut profile = Profile::load()?;
    if let Some(given) = &cmd.proxy {
        let address = signet::tunnel::ProxyAddress::parse(given)
            .map_err(signet::tunnel::TunnelError::Usage)?;
        let mut changed = profile.clone().unwrap_or_default();
        changed.proxy = Some(address.to_string());
        changed.save()?;
        profile = Some(changed);
    }
    let proxy = profile
        .as_ref()
        .and_then(|p| signet::tunnel::proxy_address(None, p).ok());
    let command = match &proxy {
        Some(_) => Some(proxy_command(
            &std::env::current_exe().context("finding the signet executable")?,
        )),
        None => None,
    };
    let known_hosts = host_ca_known_hosts()?;
    let mut out = String::new();
    match &proxy {
        Some(address) => out.push_str(&format!(
            "# Signet: ssh to these hosts goes through the Signet proxy {address},\n\
             # authenticated by your YubiKey (signet config >> ~/.ssh/config)\n"
        )),
        None => out.push_str(
            "# Signet: ssh through the Signet agent (signet config >> ~/.ssh/config)\n\
             # No Signet proxy in the profile: `signet config --proxy HOST:PORT` routes ssh through it.\n",
        ),
    }
    out.push_str(&format!("Host {}\n", hosts.join(" ")));
    if let Some(command) = &command {
        out.push_str(&format!("    ProxyCommand {command}\n"));
    }
    // No CertificateFile: the agent offers the certificate itself, and ssh
    // would try to load a private key from a CertificateFile whose key it
    // does not see listed plain ("Load key …: error in libcrypto").
    out.push_str(&format!(
        "    IdentityAgent {}\n",
        config_quote(&setup.paths.socket)
    ));
    match &known_hosts {
        Some(path) => out.push_str(&format!(
            "    UserKnownHostsFile ~/.ssh/known_hosts {}\n",
            config_quote(path)
        )),
        None => out.push_str(
            "    # No SSH host CA in the profile yet: hosts are checked against ~/.ssh/known_hosts.\n",
        ),
    }
    if cmd.json {
        let value = serde_json::json!({
            "hosts": hosts,
            "proxy": proxy.as_ref().map(ToString::to_string),
            "proxy_command": command,
            "identity_agent": setup.paths.socket,
            "certificate_file": setup.certificate,
            "known_hosts": known_hosts,
            "ssh_config": out,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{out}");
    }
    Ok(())
}

/// Runs `signet ssh …`: replaces this process with ssh.
pub(crate) fn run_ssh(cmd: SshCommand) -> anyhow::Result<()> {
    let setup = setup()?;
    setup.paths.prepare()?;
    if !answers(&setup.paths.socket) {
        start_daemon(&setup, true)?;
    }
    let known_hosts = host_ca_known_hosts()?;
    let mut ssh = Command::new("ssh");
    let option = |name: &str, value: &Path| {
        let mut o = OsString::from(format!("{name}="));
        o.push(value.as_os_str());
        o
    };
    ssh.arg("-o")
        .arg(option("IdentityAgent", &setup.paths.socket));
    if let Some(path) = known_hosts {
        let mut value = OsString::from("UserKnownHostsFile=~/.ssh/known_hosts ");
        value.push(path.as_os_str());
        ssh.arg("-o").arg(value);
    }
    ssh.args(&cmd.args);
    // exec only returns on failure.
    let err = ssh.exec();
    Err(err).context("running ssh (is openssh-client installed?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_lines_quote_what_the_shell_would_split() {
        assert_eq!(
            eval_lines(Path::new("/run/user/1000/signet/agent.sock"), "42"),
            "SSH_AUTH_SOCK=/run/user/1000/signet/agent.sock; export SSH_AUTH_SOCK;\nSSH_AGENT_PID=42; export SSH_AGENT_PID;\n"
        );
        assert_eq!(
            shell_word(Path::new("/tmp/a b/it's")),
            r"'/tmp/a b/it'\''s'"
        );
        assert_eq!(shell_word(Path::new("/tmp/$(x)")), "'/tmp/$(x)'");
    }

    #[test]
    fn proxy_command_survives_the_shell_and_ssh_expansion() {
        assert_eq!(
            proxy_command(Path::new("/usr/bin/signet")),
            "/usr/bin/signet proxy ssh %r@%h:%p"
        );
        assert_eq!(
            proxy_command(Path::new("/opt/my tools/100%/signet")),
            "'/opt/my tools/100%%/signet' proxy ssh %r@%h:%p"
        );
    }

    #[test]
    fn host_patterns_are_ssh_patterns_only() {
        assert_eq!(
            host_patterns("*.internal, web-* !db-9").unwrap(),
            vec!["*.internal", "web-*", "!db-9"]
        );
        assert_eq!(host_patterns("*").unwrap(), vec!["*"]);
        for bad in [
            "",
            " , ",
            "a\nProxyCommand evil",
            "a#b",
            "\"x\"",
            "!",
            "a=b",
            "a\tb",
        ] {
            assert!(host_patterns(bad).is_err(), "{bad:?}");
        }
    }
}
