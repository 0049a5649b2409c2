//! Two `signet-ca serve` replicas on one PostgreSQL database, each with its
//! own configuration, data directory, admin socket, port and copy of the
//! SoftHSM2 token (same keys), driven over HTTPS with a virtual WebAuthn
//! authenticator as clients are: a sign-in or an enrollment begun on one
//! replica finishes on the other; issuances on both at once make one
//! gap-free log that the auditor's `signet audit verify` accepts; a lock
//! made on one refuses issuance on the other; one replica killed (SIGKILL)
//! in a stream of issuances loses no certificate a client received and the
//! other keeps serving; the database restarted under them is refused as
//! unavailable while it is down and recovered from by themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod touchkit;
mod witnesskit;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use signet_testkit::Postgres;
use touchkit::{assert_by, register_by, SlotKey, TouchCa, PIN_NEVER, PIN_ONCE, TOUCH_ALWAYS};
use webauthn_authenticator_rs::softtoken::SoftToken;

use common::{Daemon, TEST_ORIGIN};

/// One replica host: its configuration, its copy of the token, its daemon.
struct Replica {
    config: PathBuf,
    softhsm: PathBuf,
    daemon: Option<Daemon>,
}

impl Replica {
    fn port(&self) -> u16 {
        self.daemon.as_ref().expect("serving").port
    }

    /// `signet-ca --config CONFIG ARGS` on this host (admin commands go to
    /// its daemon's socket while it serves).
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_signet-ca"))
            .env("SOFTHSM2_CONF", &self.softhsm)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "signet-ca {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// A touch-ready CA moved onto a fresh database (`store copy`), and two
/// replicas of it serving.
struct Cluster {
    // Field order is drop order: the daemons stop before the database.
    replicas: Vec<Replica>,
    t: TouchCa,
    pg: Postgres,
    db: String,
}

impl Cluster {
    fn new(label: &str) -> Self {
        let t = TouchCa::new(label);
        // Streams of sign-ins by one user: above the per-minute limits.
        t.configure("per_user_per_minute = 20", "per_user_per_minute = 10000");
        t.configure(
            "per_source_per_minute = 120",
            "per_source_per_minute = 10000",
        );
        let mut pg = Postgres::start();
        let db = pg.create_database();
        let url = pg.url(&db);
        let text = std::fs::read_to_string(&t.ca.config).unwrap();
        let store = format!(
            "\n[store]\nbackend = \"postgres\"\nurl = \"{url}\"\npassword_file = \"{}\"\n",
            pg.password_file().display()
        );
        std::fs::write(&t.ca.config, format!("{text}{store}")).unwrap();
        let data_dir = t.ca.hsm.dir().join("data");
        t.ca.ok(&[
            "store",
            "copy",
            "--from",
            data_dir.to_str().unwrap(),
            "--to",
            &format!("postgres:{url}"),
        ]);
        let replicas = ["a", "b"]
            .iter()
            .map(|name| {
                // Each host: the token copied (same keys, its own mark),
                // the data directory copied (the X.509 root file), its own
                // admin socket in it, its own name in the checkpoints.
                let softhsm = t.ca.token_copy(&format!("replica-{name}"));
                let host = t.path(&format!("replica-{name}"));
                let status = Command::new("cp")
                    .arg("-a")
                    .arg(&data_dir)
                    .arg(host.join("data"))
                    .status()
                    .unwrap();
                assert!(status.success());
                let config = host.join("signet-ca.toml");
                let own = text.replace(
                    &format!("data_dir = \"{}\"", data_dir.display()),
                    &format!("data_dir = \"{}\"", host.join("data").display()),
                );
                assert_ne!(own, text, "the data directory was not moved");
                std::fs::write(&config, format!("{own}{store}replica = \"{name}\"\n")).unwrap();
                let daemon =
                    t.ca.serve_on(&config, &softhsm, Some(&host.join("serve.log")));
                Replica {
                    config,
                    softhsm,
                    daemon: Some(daemon),
                }
            })
            .collect();
        Self {
            replicas,
            t,
            pg,
            db,
        }
    }

    /// POSTs JSON to a replica; returns the status and the JSON body.
    fn post(&self, replica: usize, path: &str, body: &Value) -> (u16, Value) {
        post(&self.t, self.replicas[replica].port(), path, body)
    }

    /// `GET /v1/health` of a replica.
    fn health(&self, replica: usize) -> (u16, Value) {
        let url = format!(
            "https://localhost:{}/v1/health",
            self.replicas[replica].port()
        );
        let mut response = self.t.agent().get(&url).call().unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap())
    }

    /// Enrolls a security key for `user`: invited on replica `admin`'s
    /// socket, begun on `begin`, finished on `finish`.
    fn enroll(
        &self,
        token: &mut SoftToken,
        user: &str,
        admin: usize,
        begin: usize,
        finish: usize,
    ) -> Value {
        let link = self.replicas[admin].ok(&["users", "invite", user, "--ttl", "10m"]);
        let invite = link.trim().rsplit('/').next().unwrap().to_owned();
        let (status, begun) = self.post(begin, "/v1/enroll/begin", &json!({ "token": invite }));
        assert_eq!(status, 200, "{begun}");
        let credential = register_by(token, &begun["webauthn"]);
        let finish_body =
            json!({ "ceremony": begun["ceremony"], "token": invite, "credential": credential });
        let (status, done) = self.post(finish, "/v1/enroll/finish", &finish_body);
        assert_eq!(status, 200, "{done}");
        // Spent on every replica: the same finish again is refused.
        let (status, again) = self.post(begin, "/v1/enroll/finish", &finish_body);
        assert_eq!(status, 410, "{again}");
        assert_eq!(again["code"], "ceremony_expired", "{again}");
        done
    }

    /// A log of the database as the auditor reads it, through a replica.
    fn audit(&self, replica: usize, state: &str) -> Value {
        let root = self.t.path("x509-root.pem");
        std::fs::write(&root, &self.t.root_pem).unwrap();
        let key = self.t.ca.export_to_file("log-key");
        let out = Command::new(witnesskit::sibling_binary("signet"))
            .env("XDG_STATE_HOME", self.t.path(state))
            .args(["audit", "verify", "--log"])
            .arg(format!(
                "https://localhost:{}/log/",
                self.replicas[replica].port()
            ))
            .arg("--tls-ca")
            .arg(&root)
            .arg("--key")
            .arg(&key)
            .args(["--origin", "ca.example.com/signet-log", "--quiet", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "signet audit verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Every issued certificate a client received is in the log at its
    /// index with its serial; no index or serial twice; no gap.
    fn check_log_holds(&self, received: &[Value]) {
        let mut indices = BTreeMap::new();
        for body in received {
            for (kind, prefix) in [("ssh", "ssh"), ("x509", "x509")] {
                let serial = body[kind]["serial"].as_str().unwrap();
                let index = body[kind]["log"]["index"].as_u64().unwrap();
                assert!(
                    indices.insert(index, serial.to_owned()).is_none(),
                    "index {index} handed out twice"
                );
                let found = self.pg.psql(
                    &self.db,
                    &format!("SELECT idx FROM log_serials WHERE key = '{prefix}:{serial}'"),
                );
                assert_eq!(found.trim(), index.to_string(), "{kind} serial {serial}");
            }
        }
        let row = self.pg.psql(
            &self.db,
            "SELECT count(*), coalesce(max(idx) + 1, 0), \
             (SELECT count(*) = count(DISTINCT key) FROM log_serials), \
             (SELECT count(*) = count(DISTINCT size) FROM log_checkpoints) FROM log_entries",
        );
        let fields: Vec<&str> = row.trim().split('|').collect();
        assert_eq!(fields[0], fields[1], "a gap in the log: {row}");
        assert_eq!(fields[2], "t", "a serial twice: {row}");
        assert_eq!(fields[3], "t", "two checkpoints for one size: {row}");
    }
}

/// POSTs JSON to `port`; (0, null) when no answer came (the replica is
/// gone).
fn post(t: &TouchCa, port: u16, path: &str, body: &Value) -> (u16, Value) {
    let sent = t
        .agent()
        .post(&format!("https://localhost:{port}{path}"))
        .header("content-type", "application/json")
        .send(serde_json::to_vec(body).unwrap());
    let Ok(mut response) = sent else {
        return (0, Value::Null);
    };
    let status = response.status().as_u16();
    let Ok(text) = response.body_mut().read_to_string() else {
        return (0, Value::Null);
    };
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A sign-in: begin on `begin`, the authenticator's touch, finish on
/// `finish` (ports). Returns the status and body of the step that ended it.
fn login(
    t: &TouchCa,
    token: &mut SoftToken,
    user: &str,
    slot: &SlotKey,
    principals: &[&str],
    (begin, finish): (u16, u16),
) -> (u16, Value) {
    let (status, begun) = post(
        t,
        begin,
        "/v1/certs/begin",
        &TouchCa::request(user, slot, principals, 3600),
    );
    if status != 200 {
        return (status, begun);
    }
    let assertion = assert_by(token, &begun["webauthn"], TEST_ORIGIN);
    post(
        t,
        finish,
        "/v1/certs/finish",
        &json!({ "ceremony": begun["ceremony"], "assertion": assertion }),
    )
}

/// Another authenticator under the same attestation CA (the CA trusts
/// the original's), its own signature counter.
fn second_token(t: &TouchCa) -> SoftToken {
    SoftToken::from_cbor(&t.token.to_cbor().unwrap()).unwrap()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn postgres_replicas_share_ceremonies_one_audited_log_and_locks() {
    let c = Cluster::new("pg-replicas-touch");
    let (a, b) = (c.replicas[0].port(), c.replicas[1].port());
    let mut alice_token = second_token(&c.t);
    let mut bob_token = second_token(&c.t);

    // Enrollment begun on A, finished on B (and the other way round).
    c.enroll(&mut alice_token, "alice", 0, 0, 1);
    c.enroll(&mut bob_token, "bob", 1, 1, 0);

    // A sign-in begun on A and finished on B; its ceremony then spent on
    // both.
    let device = c.t.device(4_242_001);
    let alice_slot = device.slot_key(PIN_ONCE, TOUCH_ALWAYS);
    let (status, begun) = post(
        &c.t,
        a,
        "/v1/certs/begin",
        &TouchCa::request("alice", &alice_slot, &["ubuntu"], 3600),
    );
    assert_eq!(status, 200, "{begun}");
    let assertion = assert_by(&mut alice_token, &begun["webauthn"], TEST_ORIGIN);
    let finish = json!({ "ceremony": begun["ceremony"], "assertion": assertion });
    let (status, first) = post(&c.t, b, "/v1/certs/finish", &finish);
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["user"], "alice");
    for port in [a, b] {
        let (status, again) = post(&c.t, port, "/v1/certs/finish", &finish);
        assert_eq!(status, 410, "{again}");
        assert_eq!(again["code"], "ceremony_expired", "{again}");
    }
    // A made-up ceremony is unknown on both.
    let (status, made_up) = post(
        &c.t,
        b,
        "/v1/certs/finish",
        &json!({ "ceremony": "bm90LWEtY2VyZW1vbnk", "assertion": finish["assertion"] }),
    );
    assert_eq!(
        (status, &made_up["code"]),
        (410, &json!("ceremony_expired"))
    );

    // Issuances on both replicas at once, each sign-in crossing from one
    // to the other.
    let bob_slot = c.t.device(4_242_002).slot_key(PIN_NEVER, TOUCH_ALWAYS);
    let t = &c.t;
    let received: Vec<Value> = std::thread::scope(|scope| {
        let streams = [
            ("alice", &mut alice_token, &alice_slot),
            ("bob", &mut bob_token, &bob_slot),
        ]
        .into_iter()
        .enumerate()
        .map(|(n, (user, token, slot))| {
            scope.spawn(move || {
                (0..5)
                    .map(|i| {
                        let route = if (i + n) % 2 == 0 { (a, b) } else { (b, a) };
                        let (status, body) = login(t, token, user, slot, &["ubuntu"], route);
                        assert_eq!(status, 200, "{user} #{i}: {body}");
                        body
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect::<Vec<_>>();
        streams
            .into_iter()
            .flat_map(|s| s.join().unwrap())
            .collect()
    });
    let mut all = received;
    all.push(first);
    c.check_log_holds(&all);
    // The auditor, reading the log from replica B, verifies all of it.
    let size: u64 =
        c.pg.psql(&c.db, "SELECT count(*) FROM log_entries")
            .trim()
            .parse()
            .unwrap();
    // Replica B follows the database's notifications: its checkpoint
    // reaches every entry promptly (asserted within 10 s, as a user would
    // wait), each step verified consistent with the one before.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let summary = loop {
        let summary = c.audit(1, "auditor-b");
        if summary["size"].as_u64().unwrap() >= size || std::time::Instant::now() > deadline {
            break summary;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(summary["size"].as_u64().unwrap() >= size, "{summary}");
    let highest = all
        .iter()
        .map(|body| body["x509"]["log"]["index"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(summary["size"].as_u64().unwrap() > highest, "{summary}");

    // A lock made on A (through its admin socket) refuses bob's issuance on
    // B at once: B brings its view up to the database before it decides.
    // A sign-in begun on B before the lock cannot finish on B after it.
    let (status, begun) = post(
        t,
        b,
        "/v1/certs/begin",
        &TouchCa::request("bob", &bob_slot, &["ubuntu"], 3600),
    );
    assert_eq!(status, 200, "{begun}");
    let assertion = assert_by(&mut bob_token, &begun["webauthn"], TEST_ORIGIN);
    c.replicas[0].ok(&["users", "lock", "bob", "--reason", "laptop stolen"]);
    let (status, body) = post(
        t,
        b,
        "/v1/certs/finish",
        &json!({ "ceremony": begun["ceremony"], "assertion": assertion }),
    );
    assert_eq!((status, &body["code"]), (403, &json!("locked")), "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("laptop stolen"),
        "{body}"
    );
    let (status, body) = login(t, &mut bob_token, "bob", &bob_slot, &["ubuntu"], (b, b));
    assert_eq!((status, &body["code"]), (403, &json!("locked")), "{body}");
    // Others are not locked, on either replica.
    let (status, body) = login(
        t,
        &mut alice_token,
        "alice",
        &alice_slot,
        &["ubuntu"],
        (b, a),
    );
    assert_eq!(status, 200, "alice is not locked: {body}");
}

#[test]
fn postgres_a_replica_killed_mid_stream_and_the_database_restarted() {
    let mut c = Cluster::new("pg-replicas-kill");
    let (a, b) = (c.replicas[0].port(), c.replicas[1].port());
    let mut alice_token = second_token(&c.t);
    let mut bob_token = second_token(&c.t);
    c.enroll(&mut alice_token, "alice", 0, 0, 0);
    c.enroll(&mut bob_token, "bob", 1, 1, 1);
    let alice_slot = c.t.device(4_242_101).slot_key(PIN_ONCE, TOUCH_ALWAYS);
    let bob_slot = c.t.device(4_242_102).slot_key(PIN_NEVER, TOUCH_ALWAYS);
    let victim = c.replicas[0].daemon.as_ref().unwrap().pid();

    // alice signs in on A without pause, bob on B; A is killed (SIGKILL)
    // in the middle of it.
    let t = &c.t;
    let (on_a, on_b) = std::thread::scope(|scope| {
        let stream_a = scope.spawn(|| {
            let mut received = Vec::new();
            for _ in 0..200 {
                match login(
                    t,
                    &mut alice_token,
                    "alice",
                    &alice_slot,
                    &["ubuntu"],
                    (a, a),
                ) {
                    (200, body) => received.push(body),
                    // The replica is gone: connections refused or cut.
                    (0, _) => break,
                    (status, body) => panic!("alice on A: {status} {body}"),
                }
            }
            received
        });
        let stream_b = scope.spawn(|| {
            (0..8)
                .map(|i| {
                    let (status, body) =
                        login(t, &mut bob_token, "bob", &bob_slot, &["ubuntu"], (b, b));
                    assert_eq!(status, 200, "bob #{i} on B: {body}");
                    std::thread::sleep(Duration::from_millis(100));
                    body
                })
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(700));
        let killed = Command::new("kill")
            .args(["-KILL", &victim.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        (stream_a.join().unwrap(), stream_b.join().unwrap())
    });
    assert!(!on_a.is_empty(), "A issued nothing before it was killed");
    eprintln!(
        "received before the kill from A: {}, from B: {}",
        on_a.len(),
        on_b.len()
    );
    let mut received = on_a;
    received.extend(on_b);
    c.check_log_holds(&received);
    // B keeps serving after the kill.
    let (status, body) = login(t, &mut bob_token, "bob", &bob_slot, &["ubuntu"], (b, b));
    assert_eq!(status, 200, "{body}");
    received.push(body);

    // The database stops under B: refused as unavailable, and /v1/health
    // says why; a sign-in begun before the stop cannot finish during it.
    let (status, begun) = post(
        t,
        b,
        "/v1/certs/begin",
        &TouchCa::request("bob", &bob_slot, &["ubuntu"], 3600),
    );
    assert_eq!(status, 200, "{begun}");
    let assertion = assert_by(&mut bob_token, &begun["webauthn"], TEST_ORIGIN);
    c.pg.stop();
    let (status, refused) = login(t, &mut bob_token, "bob", &bob_slot, &["ubuntu"], (b, b));
    assert_eq!(
        (status, &refused["code"]),
        (503, &json!("unavailable")),
        "{refused}"
    );
    let (status, refused) = post(
        t,
        b,
        "/v1/certs/finish",
        &json!({ "ceremony": begun["ceremony"], "assertion": assertion }),
    );
    assert_eq!(
        (status, &refused["code"]),
        (503, &json!("unavailable")),
        "{refused}"
    );
    wait_until(
        "B's health reports the database",
        Duration::from_secs(10),
        || {
            let (status, health) = c.health(1);
            status == 503
                && health["store"]["ok"] == false
                && health["store"]["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("database"))
        },
    );

    // Back: B recovers by itself, and issues after the entries it had.
    c.pg.restart();
    wait_until("B issues again", Duration::from_secs(30), || {
        let (status, body) = login(t, &mut bob_token, "bob", &bob_slot, &["ubuntu"], (b, b));
        if status == 200 {
            received.push(body);
        }
        status == 200
    });
    let (status, health) = c.health(1);
    assert_eq!(status, 200, "{health}");
    c.check_log_holds(&received);
    let check = c.replicas[1].ok(&["log", "check"]);
    assert!(check.starts_with("OK:"), "{check}");
    let summary = c.audit(1, "auditor-after");
    assert!(summary["size"].as_u64().unwrap() > 0, "{summary}");
}
