//! Cosignatures per second and add-checkpoint latency on loopback, beside
//! baselines measured in the same run.
//!
//! ```sh
//! cargo run --release -p signet-witness --example witness_bench -- [N] [STATE_PARENT_DIR]
//! ```
//!
//! The witness runs in this process (the same router and code as
//! `signet-witness serve`, a key file, its state directory under
//! STATE_PARENT_DIR, default `.`, so on the disk the state would be on); the
//! client is `signet_witness::client`, on one keep-alive connection. A log
//! grows by one entry per request and each request carries the consistency
//! proof from the previous checkpoint, as the CA sends it.
//!
//! Baselines: Ed25519 signatures alone (the cosigning's CPU part); the
//! witness without HTTP (checks, signature and the durable write: the
//! fsyncs); and an HTTP round trip on the same kind of connection that does
//! nothing (`GET /healthz`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may panic

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::serve::ListenerExt as _;
use ed25519_dalek::Signer as _;
use signet_log::checkpoint::Checkpoint;
use signet_log::merkle::{
    consistency_proof, leaf_hash, root_from_leaf_hashes, Hash, MemoryHashStore,
};
use signet_log::note::{KeyId, NoteSigner, SignerError, VerifierKey};
use signet_witness::client::WitnessClient;
use signet_witness::config::Config;
use signet_witness::protocol::format_request;
use signet_witness::witness::Witness;

const ORIGIN: &str = "bench.example/signet-log";

struct Log {
    key: ed25519_dalek::SigningKey,
    vkey: VerifierKey,
    leaves: Vec<Hash>,
}

impl NoteSigner for Log {
    fn name(&self) -> &str {
        ORIGIN
    }
    fn key_id(&self) -> KeyId {
        self.vkey.key_id()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

impl Log {
    fn grow(&mut self) -> u64 {
        let i = self.leaves.len();
        self.leaves.push(leaf_hash(format!("entry {i}").as_bytes()));
        self.leaves.len() as u64
    }
    fn checkpoint(&self, size: u64) -> String {
        Checkpoint::new(
            ORIGIN,
            size,
            root_from_leaf_hashes(&self.leaves[..size as usize]),
        )
        .unwrap()
        .sign(&[self])
        .unwrap()
        .to_text()
    }
    fn proof(&self, old: u64, new: u64) -> Vec<Hash> {
        if old == 0 {
            return Vec::new();
        }
        consistency_proof(&MemoryHashStore::from_leaf_hashes(&self.leaves), old, new).unwrap()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(what: &str, mut times: Vec<Duration>, total: Duration) {
    times.sort();
    println!(
        "{what:<44} {:>9.0}/s   p50 {:>8.1} µs   p99 {:>8.1} µs",
        times.len() as f64 / total.as_secs_f64(),
        percentile(&times, 0.50).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
    );
}

fn timed(n: usize, mut f: impl FnMut(usize)) -> (Vec<Duration>, Duration) {
    let mut times = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        f(i);
        times.push(t.elapsed());
    }
    (times, start.elapsed())
}

fn witness(dir: &std::path::Path, name: &str, log: &Log) -> (Witness, Config) {
    let config_path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config_path,
        format!(
            "name = \"{name}\"\nstate_dir = \"{name}-state\"\n[key]\nfile = \"{name}.key\"\n[[log]]\norigin = \"{ORIGIN}\"\nvkey = \"{}\"\n",
            log.vkey
        ),
    )
    .unwrap();
    let config = Config::load(&config_path).unwrap();
    let signer = signet_witness::key::create(&config).unwrap();
    (Witness::new(&config, signer).unwrap(), config)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map_or(2000, |a| a.parse().expect("N: a number"));
    let parent = args.next().unwrap_or_else(|| ".".into());
    let dir = tempfile::tempdir_in(&parent).unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let vkey = VerifierKey::ed25519(ORIGIN, key.verifying_key().as_bytes()).unwrap();
    let mut log = Log {
        key,
        vkey,
        leaves: Vec::new(),
    };
    for _ in 0..(n + 10) {
        log.grow();
    }
    println!(
        "signet-witness benchmark: {n} requests each, state in {}",
        dir.path().display()
    );

    // Baseline 1: Ed25519 signatures of a cosigned message's size.
    let sk = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let msg = format!("cosignature/v1\ntime 1700000000\n{}", log.checkpoint(5));
    let (t, total) = timed(n, |_| {
        std::hint::black_box(sk.sign(msg.as_bytes()));
    });
    report("baseline: Ed25519 signature", t, total);

    // Baseline 2: the witness without HTTP (checks, cosign, durable write).
    let (direct, _) = witness(dir.path(), "direct", &log);
    let mut old = 0;
    let bodies: Vec<String> = (0..n)
        .map(|i| {
            let size = (i + 1) as u64;
            let body = format_request(old, &log.proof(old, size), &log.checkpoint(size));
            old = size;
            body
        })
        .collect();
    let (t, total) = timed(n, |i| {
        direct.add_checkpoint(bodies[i].as_bytes()).unwrap();
    });
    report("baseline: witness without HTTP (fsyncs incl.)", t, total);

    // The served witness.
    let (served, config) = witness(dir.path(), "served", &log);
    let served = Arc::new(served);
    let app = signet_witness::server::app(served, config.max_body_bytes, config.request_timeout);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            // As `signet-witness serve` does: TCP_NODELAY on every connection.
            let listener = tokio::net::TcpListener::from_std(listener)
                .unwrap()
                .tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
            axum::serve(listener, app).await.unwrap();
        });
    });
    let url = format!("http://{addr}");

    // Baseline 3: an HTTP round trip that does nothing, keep-alive.
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let healthz = format!("{url}/healthz");
    let _ = agent
        .get(&healthz)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string();
    let (t, total) = timed(n, |_| {
        let mut r = agent.get(&healthz).call().unwrap();
        let _ = r.body_mut().read_to_string().unwrap();
    });
    report("baseline: HTTP round trip (GET /healthz)", t, total);

    // add-checkpoint through the client, one entry more each time.
    let client = WitnessClient::new();
    let to = Duration::from_secs(10);
    client
        .add_checkpoint(&url, 0, &[], &log.checkpoint(1), to)
        .unwrap();
    let mut old = 1;
    // Checkpoints are made before timing: the CA has its note already.
    let requests: Vec<(u64, Vec<Hash>, String)> = (0..n)
        .map(|i| {
            let size = (i + 2) as u64;
            let r = (old, log.proof(old, size), log.checkpoint(size));
            old = size;
            r
        })
        .collect();
    let (t, total) = timed(n, |i| {
        let (old, proof, note) = &requests[i];
        let lines = client.add_checkpoint(&url, *old, proof, note, to).unwrap();
        assert_eq!(lines.len(), 1);
    });
    report("add-checkpoint on loopback (client → server)", t, total);
}
