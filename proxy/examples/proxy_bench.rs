//! The access proxy's benchmark, in one run against real peers (the same
//! set-up as the end-to-end tests: the CA daemon on SoftHSM2, a joined
//! `signet-proxy serve`, loopback sshd nodes):
//!
//! 1. bulk throughput of `ssh node 'head -c N /dev/zero'` through the
//!    proxy, direct, and through an OpenSSH bastion (`ProxyJump`, a second
//!    loopback sshd), as ratios to direct. The client here is the tests'
//!    ProxyCommand (`openssl s_client` fed by `cat`: two more processes
//!    copying every byte), so this is a floor; the figure with the
//!    engineer's client (`signet proxy ssh`, its key on the card) comes from
//!    `throughput_through_the_proxy_against_direct` in client/tests/proxy_ssh.rs;
//! 2. added connection latency: TCP connect to the SSH banner, direct vs
//!    through the proxy (TLS 1.3 with a client certificate, preamble,
//!    decision, dial), p50/p99; and `ssh node true` both ways;
//! 3. memory per idle tunnel: the proxy's RSS before and after 1,000
//!    concurrent tunnels to a loopback TCP sink;
//! 4. lock propagation: `signet-ca lock --user` to the tunnel's close,
//!    for one tunnel and for all 1,000.
//!
//! ```text
//! cargo build --release --all-features -p signet-proxy --example proxy_bench
//! cargo build --all-features -p signet-ca
//! SIGNET_BIN_SIGNET_CA=target/debug/signet-ca target/release/examples/proxy_bench
//! ```
//! (the CA's speed is not measured, so it may be a debug build). Options:
//! `--mib N` per transfer (default 512), `--rounds N` (default 5),
//! `--tunnels N` (default 1000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivateSec1KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

use common::{run_ok, Env};
use signet_testkit::Sshd;

/// Sources the 1,000 tunnels come from: 127.0.0.2 … (the proxy allows 32
/// connections per source address).
const SOURCES: u8 = 40;

#[derive(clap::Parser)]
#[command(
    about = "signet-proxy: throughput, added latency, memory per idle tunnel, lock propagation."
)]
struct Args {
    /// MiB per bulk transfer.
    #[arg(long, default_value_t = 512)]
    mib: u64,
    /// Rounds over the three throughput paths (interleaved).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Idle tunnels held open for the memory and lock measurements.
    #[arg(long, default_value_t = 1000)]
    tunnels: usize,
}

/// The benchmark trusts the proxy's certificate without checking it: the
/// tests check trust; this measures cost. Signatures are still verified.
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn pem(path: &Path) -> Vec<u8> {
    der::pem::decode_vec(&std::fs::read(path).unwrap())
        .unwrap()
        .1
}

/// A TLS client with alice's certificate and ALPN signet-ssh/1.
fn connector(env: &Env) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
        .with_client_auth_cert(
            vec![CertificateDer::from(pem(&env.x509))],
            PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(pem(&env.key))),
        )
        .unwrap();
    config.alpn_protocols = vec![b"signet-ssh/1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

fn source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        0,
        2 + (i % usize::from(SOURCES)) as u8,
    ))
}

async fn tcp_from(source: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let tcp = socket.connect(to).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

type Tunnel = tokio_rustls::client::TlsStream<TcpStream>;

/// Reads until `needle` has arrived; returns what came.
async fn read_until<S: AsyncRead + Unpin>(
    stream: &mut S,
    needle: &[u8],
) -> std::io::Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.windows(needle.len()).any(|w| w == needle) {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::other(format!(
                "closed after {:?}",
                String::from_utf8_lossy(&got)
            )));
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got)
}

/// A tunnel through the proxy to `node`, open once the proxy said ok.
async fn tunnel(
    connector: &TlsConnector,
    proxy: SocketAddr,
    from: IpAddr,
    node: &str,
    login: &str,
) -> std::io::Result<Tunnel> {
    let tcp = tcp_from(from, proxy).await?;
    let mut tls = connector
        .connect(ServerName::try_from("signet-proxy").unwrap(), tcp)
        .await?;
    tls.write_all(format!("signet-ssh/1 node={node} login={login}\n").as_bytes())
        .await?;
    read_until(&mut tls, b"signet-ssh/1 ok\n").await?;
    Ok(tls)
}

/// Reads the tunnel until it ends; when it ended.
async fn closed_at(mut tunnel: Tunnel) -> Instant {
    let mut buf = [0u8; 64];
    loop {
        match tunnel.read(&mut buf).await {
            Ok(0) | Err(_) => return Instant::now(),
            Ok(_) => {}
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// `ssh -F config host 'head -c bytes /dev/zero'` to /dev/null; MiB/s.
fn download(config: &Path, host: &str, bytes: u64) -> f64 {
    let started = Instant::now();
    let out = Command::new("ssh")
        .arg("-F")
        .arg(config)
        .arg(host)
        .arg(format!("head -c {bytes} /dev/zero"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bytes as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    // The sink: a loopback TCP listener that accepts and holds.
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let sink_port = sink.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in sink.incoming() {
            match conn {
                Ok(c) => held.push(c),
                Err(_) => continue,
            }
        }
    });
    let env = Env::start_with(
        "",
        &format!(
            "---\nkind: node\nname: sink-1\naddress: 127.0.0.1:{sink_port}\nlabels: {{ env: prod }}\n"
        ),
    );
    let user_ca = env.ca.path("ssh-user-ca.pub");
    let bastion = Sshd::start(&format!("TrustedUserCAKeys {}", user_ca.display()), None);
    let bench_config = env.ca.write(
        "bench_ssh_config",
        &format!(
            "Host *\n  User {login}\n  IdentityFile {key}\n  CertificateFile {cert}\n  \
             IdentitiesOnly yes\n  BatchMode yes\n  StrictHostKeyChecking no\n  \
             UserKnownHostsFile /dev/null\n  LogLevel ERROR\n\
             Host node-direct\n  HostName 127.0.0.1\n  Port {node}\n\
             Host bastion\n  HostName 127.0.0.1\n  Port {bastion}\n\
             Host node-via-bastion\n  HostName 127.0.0.1\n  Port {node}\n  ProxyJump bastion\n",
            login = env.login,
            key = env.key.display(),
            cert = env.ssh_cert.display(),
            node = env.sshd.port(),
            bastion = bastion.port(),
        ),
    );
    let proxy_addr: SocketAddr = format!("127.0.0.1:{}", env.proxy_port).parse().unwrap();
    let node_addr: SocketAddr = format!("127.0.0.1:{}", env.sshd.port()).parse().unwrap();
    let connector = connector(&env);
    println!(
        "signet-proxy benchmark: {} CPUs, {} MiB per transfer, {} rounds, {} idle tunnels",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.mib,
        args.rounds,
        args.tunnels
    );

    // 1. Throughput, the three paths interleaved round by round.
    let bytes = args.mib << 20;
    let mut direct = Vec::new();
    let mut proxied = Vec::new();
    let mut bastioned = Vec::new();
    // One small warm-up each (page cache, first connections).
    download(&bench_config, "node-direct", 1 << 20);
    download(&env.ssh_config, "web-1", 1 << 20);
    download(&bench_config, "node-via-bastion", 1 << 20);
    for _ in 0..args.rounds {
        direct.push(download(&bench_config, "node-direct", bytes));
        proxied.push(download(&env.ssh_config, "web-1", bytes));
        bastioned.push(download(&bench_config, "node-via-bastion", bytes));
    }
    let (d, p, b) = (
        median(direct.clone()),
        median(proxied.clone()),
        median(bastioned.clone()),
    );
    println!(
        "\n1. bulk throughput, ssh 'head -c {} MiB /dev/zero', median of {}:",
        args.mib, args.rounds
    );
    println!("   direct ssh          {d:8.1} MiB/s   (runs {direct:.0?})");
    println!(
        "   through the proxy   {p:8.1} MiB/s   (runs {proxied:.0?})  = {:.3} x direct  (client: openssl s_client + cat)",
        p / d
    );
    println!(
        "   OpenSSH bastion -J  {b:8.1} MiB/s   (runs {bastioned:.0?})  = {:.3} x direct",
        b / d
    );
    println!("   proxy / bastion     {:.3}", p / b);

    // 2. Connection latency to the SSH banner, interleaved.
    let samples = 300;
    let (mut lat_direct, mut lat_proxy) = (Vec::new(), Vec::new());
    runtime.block_on(async {
        for i in 0..samples {
            let started = Instant::now();
            let mut tcp = TcpStream::connect(node_addr).await.unwrap();
            read_until(&mut tcp, b"SSH-2.0-").await.unwrap();
            lat_direct.push(started.elapsed());
            drop(tcp);
            let started = Instant::now();
            let mut tls = tunnel(&connector, proxy_addr, source(i), "web-1", &env.login)
                .await
                .unwrap();
            read_until(&mut tls, b"SSH-2.0-").await.unwrap();
            lat_proxy.push(started.elapsed());
            let _ = tls.shutdown().await;
        }
    });
    lat_direct.sort();
    lat_proxy.sort();
    println!("\n2. connection latency, TCP connect to the node's SSH banner, {samples} each:");
    println!(
        "   direct              p50 {}  p99 {}",
        ms(percentile(&lat_direct, 0.5)),
        ms(percentile(&lat_direct, 0.99))
    );
    println!(
        "   through the proxy   p50 {}  p99 {}",
        ms(percentile(&lat_proxy, 0.5)),
        ms(percentile(&lat_proxy, 0.99))
    );
    println!(
        "   added by the proxy  p50 {}  p99 {}",
        ms(percentile(&lat_proxy, 0.5).saturating_sub(percentile(&lat_direct, 0.5))),
        ms(percentile(&lat_proxy, 0.99).saturating_sub(percentile(&lat_direct, 0.99)))
    );
    let (mut ssh_direct, mut ssh_proxy) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        for (config, host, into) in [
            (&bench_config, "node-direct", &mut ssh_direct),
            (&env.ssh_config, "web-1", &mut ssh_proxy),
        ] {
            let started = Instant::now();
            run_ok(
                Command::new("ssh")
                    .arg("-F")
                    .arg(config)
                    .arg(host)
                    .arg("true")
                    .stdin(Stdio::null()),
            );
            into.push(started.elapsed());
        }
    }
    ssh_direct.sort();
    ssh_proxy.sort();
    println!(
        "   `ssh node true`, 20 each: direct p50 {} max {}; proxy (openssl s_client ProxyCommand) p50 {} max {}",
        ms(percentile(&ssh_direct, 0.5)),
        ms(ssh_direct[ssh_direct.len() - 1]),
        ms(percentile(&ssh_proxy, 0.5)),
        ms(ssh_proxy[ssh_proxy.len() - 1])
    );

    // 3. Memory per idle tunnel.
    let pid = env.proxy_pid();
    let tunnels = runtime.block_on(async {
        // Warm-up: the allocator's arenas and the runtime's threads.
        let mut warm = Vec::new();
        for i in 0..64 {
            warm.push(tunnel(&connector, proxy_addr, source(i), "sink-1", &env.login).await.unwrap());
        }
        drop(warm);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = rss_kib(pid);
        let mut open = Vec::with_capacity(args.tunnels);
        let mut pending = Vec::new();
        for i in 0..args.tunnels {
            let (connector, login) = (connector.clone(), env.login.clone());
            pending.push(tokio::spawn(async move {
                tunnel(&connector, proxy_addr, source(i), "sink-1", &login).await
            }));
            if pending.len() == 50 {
                for p in pending.drain(..) {
                    open.push(p.await.unwrap().unwrap());
                }
            }
        }
        for p in pending.drain(..) {
            open.push(p.await.unwrap().unwrap());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_kib(pid);
        println!(
            "\n3. memory: proxy RSS {before} KiB before, {after} KiB with {} idle tunnels: {:.1} KiB per tunnel",
            open.len(),
            (after.saturating_sub(before)) as f64 / open.len() as f64
        );
        open
    });

    // 4. Lock propagation: all the idle tunnels, then one at a time.
    let closed_all = runtime.block_on(async {
        let waits: Vec<_> = tunnels
            .into_iter()
            .map(|t| tokio::spawn(closed_at(t)))
            .collect();
        // The runtime's worker keeps reading while the command runs here.
        let started = Instant::now();
        env.ca
            .ok(&["lock", "--user", "alice", "--reason", "benchmark"]);
        let ca = started.elapsed();
        let mut last = started;
        for w in waits {
            last = last.max(w.await.unwrap());
        }
        (last - started, ca)
    });
    println!(
        "\n4. lock propagation: `signet-ca lock --user` to all {} tunnels closed: {} (the command itself {})",
        args.tunnels,
        ms(closed_all.0),
        ms(closed_all.1)
    );
    let mut one = Vec::new();
    for _ in 0..10 {
        env.ca.ok(&["unlock", "--user", "alice"]);
        let t = runtime.block_on(async {
            loop {
                if let Ok(t) = tunnel(&connector, proxy_addr, source(0), "sink-1", &env.login).await
                {
                    return t;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = runtime.spawn(async move {
            let _ = tx.send(closed_at(t).await);
        });
        let started = Instant::now();
        env.ca
            .ok(&["lock", "--user", "alice", "--reason", "benchmark"]);
        let command = started.elapsed();
        let closed = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the tunnel outlived the lock");
        runtime.block_on(reader).unwrap();
        one.push((closed - started, command));
    }
    let mut totals: Vec<Duration> = one.iter().map(|(t, _)| *t).collect();
    totals.sort();
    let mut commands: Vec<Duration> = one.iter().map(|(_, c)| *c).collect();
    commands.sort();
    println!(
        "   one tunnel, 10 times: lock command start to close p50 {} max {} (the command itself p50 {})",
        ms(percentile(&totals, 0.5)),
        ms(totals[totals.len() - 1]),
        ms(percentile(&commands, 0.5))
    );
    drop(bastion);
}
