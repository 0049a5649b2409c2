//! `[store]`: which backend holds the log, and opening it as configured.
//!
//! ```toml
//! [store]
//! backend = "postgres"          # default: "embedded" (redb in data_dir)
//! url = "postgres://signet@db.example:5432/signet?sslmode=require"
//! password_file = "/etc/signet/db-password"
//! ca_file = "/etc/signet/db-ca.pem"   # optional: the database server's CA
//! replica = "ca-1"                    # optional: recorded with its checkpoints
//! ```
//!
//! The embedded store needs nothing; several replicas of one CA point at
//! one PostgreSQL database and hold the same HSM keys.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::local::CheckpointSigner;
use super::postgres::{PgConfig, PgOptions, PgStore};
use super::{CommitMode, HighWaterMark, LocalStore, LogStore, StoreOptions, Witnesses};
use crate::config::Config;
use crate::{Error, Result};

/// Where the log lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// redb in the data directory: one CA process, nothing to install.
    #[default]
    Embedded,
    /// A PostgreSQL database shared by several CA replicas.
    Postgres,
}

/// `[store]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `embedded` (default) or `postgres`.
    #[serde(default)]
    pub backend: Backend,
    /// The database URL (`postgres://USER@HOST:PORT/DB?sslmode=…`), without
    /// a password.
    #[serde(default)]
    pub url: Option<String>,
    /// The file holding the database password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// PEM certificates the database server's certificate must chain to
    /// (default: the system's roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// This replica's name in the checkpoints it signs (default: the host
    /// name).
    #[serde(default)]
    pub replica: Option<String>,
}

impl StoreSection {
    /// Paths relative to the configuration file's directory.
    pub fn anchor(&mut self, base: &std::path::Path) {
        for file in [self.password_file.as_mut(), self.ca_file.as_mut()]
            .into_iter()
            .flatten()
        {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
    }

    /// Checks the section is complete for its backend.
    pub fn check(&self) -> std::result::Result<(), String> {
        match self.backend {
            Backend::Embedded => {
                if self.url.is_some() || self.password_file.is_some() || self.ca_file.is_some() {
                    return Err(
                        "store: url, password_file and ca_file need backend = \"postgres\"".into(),
                    );
                }
            }
            Backend::Postgres => {
                if self.url.is_none() {
                    return Err("store: backend = \"postgres\" needs url".into());
                }
            }
        }
        Ok(())
    }

    /// The database settings, for the postgres backend.
    pub fn postgres(&self) -> Option<PgConfig> {
        Some(PgConfig {
            url: self.url.clone()?,
            password_file: self.password_file.clone(),
            ca_file: self.ca_file.clone(),
        })
    }
}

/// How a command opens the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenKind {
    /// The log must exist (every command but the two below).
    Existing,
    /// Start an empty log if there is none (the key ceremony).
    Create,
    /// Write the high-water mark from a log that has none (`log adopt-mark`).
    AdoptMark,
}

/// The replica name when none is configured: the host name.
fn default_replica() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "signet-ca".into())
}

/// Opens the configured store, verified, with this checkpoint signer, mark
/// and witnesses.
pub fn open(
    config: &Config,
    signer: CheckpointSigner,
    verifier: signet_log::note::VerifierKey,
    mark: Arc<dyn HighWaterMark>,
    witnesses: Option<Arc<Witnesses>>,
    kind: OpenKind,
) -> Result<Arc<dyn LogStore>> {
    match config.store.backend {
        Backend::Embedded => {
            let options = StoreOptions {
                path: config.store_path(),
                origin: config.log_origin(),
                signer,
                verifier,
                mark,
                mode: CommitMode::Group,
                witnesses,
            };
            Ok(Arc::new(match kind {
                OpenKind::Existing => LocalStore::open(options)?,
                OpenKind::Create => LocalStore::create(options)?,
                OpenKind::AdoptMark => LocalStore::adopt_mark(options)?,
            }))
        }
        Backend::Postgres => {
            let db = config
                .store
                .postgres()
                .ok_or_else(|| Error::Store("store: backend = \"postgres\" needs url".into()))?;
            let options = PgOptions {
                db,
                origin: config.log_origin(),
                signer,
                verifier,
                mark,
                mode: CommitMode::Group,
                witnesses,
                replica: config.store.replica.clone().unwrap_or_else(default_replica),
            };
            Ok(Arc::new(match kind {
                OpenKind::Existing => PgStore::open(options)?,
                OpenKind::Create => PgStore::create(options)?,
                OpenKind::AdoptMark => PgStore::adopt_mark(options)?,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<StoreSection, String> {
        let section: StoreSection = toml::from_str(text).map_err(|e| e.to_string())?;
        section.check()?;
        Ok(section)
    }

    #[test]
    fn store_sections_for_embedded_and_postgres() {
        let embedded = parse("").unwrap();
        assert_eq!(embedded.backend, Backend::Embedded);
        assert!(embedded.postgres().is_none());
        let pg = parse(
            "backend = \"postgres\"\nurl = \"postgres://ca@db/signet\"\npassword_file = \"pw\"\n",
        )
        .unwrap();
        assert_eq!(pg.postgres().unwrap().url, "postgres://ca@db/signet");
        for bad in [
            "backend = \"postgres\"\n",
            "url = \"postgres://ca@db/signet\"\n",
            "backend = \"mysql\"\n",
            "backend = \"postgres\"\nurl = \"postgres://ca@db/x\"\npassword = \"x\"\n",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod example {
    #[test]
    fn the_shipped_postgres_store_example_parses() {
        #[derive(serde::Deserialize)]
        struct File {
            store: super::StoreSection,
        }
        let text = include_str!("../../../../deploy/postgres/signet-ca.store.toml");
        let file: File = toml::from_str(text).unwrap();
        file.store.check().unwrap();
        assert_eq!(file.store.backend, super::Backend::Postgres);
        assert!(file.store.postgres().unwrap().password_file.is_some());
    }
}

#[cfg(test)]
mod two_replicas {
    use crate::config::Config;
    use std::path::Path;

    /// deploy/postgres/: two replicas of one CA and a proxy in front of
    /// each, as the operator's guide shows them.
    #[test]
    fn the_shipped_two_replica_example_is_one_ca_on_one_database() {
        let texts = [
            include_str!("../../../../deploy/postgres/ca-1.toml"),
            include_str!("../../../../deploy/postgres/ca-2.toml"),
        ];
        let configs: Vec<Config> = texts
            .iter()
            .map(|text| Config::parse(text, Path::new("/etc/signet/ca.toml")).unwrap())
            .collect();
        let (one, two) = (&configs[0], &configs[1]);
        for config in &configs {
            assert_eq!(config.store.backend, super::Backend::Postgres);
            config.store.check().unwrap();
            assert!(config.serve.proxy_listen.is_some());
        }
        // One CA: the same database, keys and log; each its own name.
        assert_eq!(one.store.postgres(), two.store.postgres());
        assert_eq!(one.hsm.token_label, two.hsm.token_label);
        assert_eq!(one.log_origin(), two.log_origin());
        assert_eq!(one.store.replica.as_deref(), Some("ca-1"));
        assert_eq!(two.store.replica.as_deref(), Some("ca-2"));
        // Nothing else differs than the names and the replica.
        let strip = |text: &str| {
            text.lines()
                .filter(|l| {
                    !l.starts_with('#') && !l.starts_with("names") && !l.starts_with("replica")
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(strip(texts[0]), strip(texts[1]));

        // Each proxy follows one replica's feed, on its proxy listener, and
        // is named in both replicas' proxy_names.
        for (proxy, replica) in [
            (
                include_str!("../../../../deploy/postgres/proxy-eu.toml"),
                "ca-1",
            ),
            (
                include_str!("../../../../deploy/postgres/proxy-us.toml"),
                "ca-2",
            ),
        ] {
            let proxy: toml::Table = toml::from_str(proxy).unwrap();
            let ca = proxy["ca"].as_table().unwrap();
            let port = one.serve.proxy_listen.unwrap().port();
            assert_eq!(
                ca["feed_url"].as_str().unwrap(),
                format!("https://{replica}.internal.example:{port}")
            );
            let names = proxy["public_names"].as_array().unwrap();
            for name in names {
                assert!(one
                    .serve
                    .proxy_names
                    .iter()
                    .any(|n| n == name.as_str().unwrap()));
            }
        }
    }
}
