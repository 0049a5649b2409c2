//! The command line for the log's storage: `store migrate` (the
//! PostgreSQL schema) and `store copy` (a single-host CA's log into
//! PostgreSQL, verified after the copy).

use std::path::PathBuf;

use clap::Subcommand;
use signet_ca::ca_keys::CaKeys;
use signet_ca::config::Config;
use signet_ca::store::configured::{Backend, OpenKind};
use signet_ca::store::postgres::copy::copy_into;
use signet_ca::store::{PgConfig, PgStore};
use signet_ca::Error;

#[derive(Subcommand)]
pub(crate) enum StoreCommand {
    /// Apply the PostgreSQL schema's pending migrations (`[store] backend =
    /// "postgres"`). The CA applies them at every start too; this runs them
    /// ahead of a rollout, once, from one host.
    #[command(after_help = "Example:\n  signet-ca store migrate --config /etc/signet/ca.toml")]
    Migrate,
    /// Copy the log of a single-host CA (its embedded store in DATA_DIR)
    /// into an empty PostgreSQL database, then open the copy as the CA
    /// would — verified from scratch against its checkpoint and the
    /// high-water mark — and check it has the same root. The password
    /// comes from `[store] password_file`; stop the CA first.
    #[command(
        after_help = "Example:\n  signet-ca store copy --config /etc/signet/ca.toml --from /var/lib/signet --to postgres://signet@db.example/signet?sslmode=require"
    )]
    Copy {
        /// The data directory of the embedded store (holding log.redb).
        #[arg(long, value_name = "DATA_DIR")]
        from: PathBuf,
        /// The database: `postgres:URL` or a `postgres://` URL, without a
        /// password.
        #[arg(long, value_name = "postgres:URL")]
        to: String,
    },
}

pub(crate) fn store(config: &Config, command: StoreCommand) -> Result<(), Error> {
    match command {
        StoreCommand::Migrate => {
            let db = config.store.postgres().ok_or_else(|| Error::BadRequest {
                field: "store",
                reason: "the configuration's [store] is the embedded store: there is no schema \
                         to migrate (set backend = \"postgres\" and url)"
                    .into(),
            })?;
            let applied = PgStore::migrate(&db)?;
            if applied.is_empty() {
                println!(
                    "The schema is up to date (version {}).",
                    signet_ca::store::postgres::schema::latest_version()
                );
            } else {
                let list: Vec<String> = applied.iter().map(i32::to_string).collect();
                println!("Applied migrations {}.", list.join(", "));
            }
            Ok(())
        }
        StoreCommand::Copy { from, to } => copy(config, from, &to),
    }
}

/// `postgres:URL` or `postgres://…` → the URL.
fn target_url(to: &str) -> Result<String, Error> {
    let bad = || Error::BadRequest {
        field: "--to",
        reason: "expected postgres:URL, e.g. postgres://signet@db.example/signet".into(),
    };
    let rest = to.strip_prefix("postgres:").ok_or_else(bad)?;
    let url = if rest.starts_with("//") {
        to.to_owned()
    } else {
        rest.to_owned()
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(bad());
    }
    Ok(url)
}

fn copy(config: &Config, from: PathBuf, to: &str) -> Result<(), Error> {
    let url = target_url(to)?;
    let keys = CaKeys::open(config)?;
    let mut source_config = config.clone();
    source_config.data_dir = from;
    source_config.store = Default::default();
    let (source, _) = crate::open_store_as(&source_config, &keys, OpenKind::Existing)?;
    let db = PgConfig {
        url: url.clone(),
        password_file: config.store.password_file.clone(),
        ca_file: config.store.ca_file.clone(),
    };
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = copy_into(source.as_ref(), &db, |done, total| {
        if progress {
            eprint!("\rsignet-ca: {done}/{total} entries copied");
        }
    })?;
    if progress {
        eprintln!();
    }
    drop(source);
    let mut target_config = config.clone();
    target_config.store.backend = Backend::Postgres;
    target_config.store.url = Some(url);
    let (target, _) = crate::open_store_as(&target_config, &keys, OpenKind::Existing)?;
    let checkpoint = target.latest_checkpoint();
    if checkpoint.size != report.entries || checkpoint.root != report.root {
        return Err(Error::Integrity {
            index: None,
            problem: format!(
                "the copy's latest checkpoint (size {}) is not the source's (size {})",
                checkpoint.size, report.entries
            ),
        });
    }
    println!(
        "Copied {} entries; the database's log verified from scratch, root {} (the same as the source's).",
        report.entries,
        hex::encode(report.root)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_copy_targets_are_postgres_urls() {
        assert_eq!(
            target_url("postgres:postgres://ca@db/signet").unwrap(),
            "postgres://ca@db/signet"
        );
        assert_eq!(
            target_url("postgres://ca@db/signet").unwrap(),
            "postgres://ca@db/signet"
        );
        for bad in [
            "mysql://x",
            "postgres:",
            "postgres:db/signet",
            "/var/lib/signet",
        ] {
            assert!(target_url(bad).is_err(), "{bad}");
        }
    }
}
