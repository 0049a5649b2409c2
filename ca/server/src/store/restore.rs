//! `signet-ca log restore`: rebuild a lost or rolled-back store from a
//! verified copy of the published tiles (a mirror, a `log export`), never by
//! hand. The copy's checkpoint must verify with the log key, its entries
//! must hash to it and be valid entries, and it must reach and contain the
//! high-water mark — so a restore can never roll the log back or fork it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use signet_log::entry::Entry;
use signet_log::merkle::{self, CompactRange};
use signet_log::note::VerifierKey;
use signet_log::tiles::{EntryBundle, TileKind, TilePath, MAX_ENTRY_LEN, TILE_WIDTH};

use super::local::write_restored;
use super::verify::broken;
use super::{HighWaterMark, SerialKind, SignedCheckpoint};
use crate::{Error, Result};

/// A signed checkpoint note is a few hundred bytes; anything much larger is
/// not one.
const MAX_CHECKPOINT_LEN: u64 = 16 * 1024;
/// An entry bundle: at most 256 entries with a 2-byte length each.
const MAX_BUNDLE_LEN: u64 = (TILE_WIDTH as u64) * (MAX_ENTRY_LEN as u64 + 2);

/// Where a copy of the published log is read from.
pub trait TileFetch {
    /// Names the copy, for messages.
    fn describe(&self) -> String;
    /// The file at `path` (relative to the log's prefix: `checkpoint`,
    /// `tile/entries/000`), `None` if the copy does not have it.
    fn get(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>>;
}

/// A copy in a directory (`signet-ca log export DIR`, a mirror's files).
pub struct DirCopy(PathBuf);

/// A copy served over HTTP(S) (`signet-ca serve`'s `/log/`, a mirror).
pub struct HttpCopy {
    base: String,
    agent: ureq::Agent,
}

/// The copy `from` names: an `http://` or `https://` URL, or a directory.
pub fn copy_at(from: &str) -> Result<Box<dyn TileFetch>> {
    if from.starts_with("http://") || from.starts_with("https://") {
        let base = if from.ends_with('/') {
            from.to_owned()
        } else {
            format!("{from}/")
        };
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_per_call(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .max_redirects(3)
            .user_agent(concat!("signet-ca/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Box::new(HttpCopy {
            base,
            agent: config.into(),
        }))
    } else {
        let dir = PathBuf::from(from);
        if !dir.is_dir() {
            return Err(Error::bad(
                "--from",
                format!("{from} is neither a directory nor an http(s) URL"),
            ));
        }
        Ok(Box::new(DirCopy(dir)))
    }
}

fn too_large(what: &str, limit: u64) -> Error {
    Error::bad(
        "--from",
        format!("{what} is larger than the {limit} bytes it can be"),
    )
}

impl TileFetch for DirCopy {
    fn describe(&self) -> String {
        self.0.display().to_string()
    }

    fn get(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let full = self.0.join(path);
        let Some(file) = super::open_regular_file(&full)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| Error::File {
                path: full.clone(),
                reason: e.to_string(),
            })?;
        if bytes.len() as u64 > limit {
            return Err(too_large(&full.display().to_string(), limit));
        }
        Ok(Some(bytes))
    }
}

/// A URL as messages show it: without any `user:password@`.
fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://…@{host}{tail}"),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

impl TileFetch for HttpCopy {
    fn describe(&self) -> String {
        redacted(&self.base)
    }

    fn get(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let url = format!("{}{path}", self.base);
        let shown = redacted(&url);
        let fail = |reason: String| Error::bad("--from", format!("{shown}: {reason}"));
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| fail(e.to_string()))?;
        match response.status().as_u16() {
            200 => {}
            404 | 410 => return Ok(None),
            other => return Err(fail(format!("HTTP status {other}"))),
        }
        let bytes = response
            .body_mut()
            .with_config()
            .limit(limit.saturating_add(1))
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => too_large(&shown, limit),
                other => fail(other.to_string()),
            })?;
        if bytes.len() as u64 > limit {
            return Err(too_large(&shown, limit));
        }
        Ok(Some(bytes))
    }
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// Entries in the rebuilt store.
    pub entries: u64,
    /// Where the store that was replaced was moved, if there was one.
    pub moved_aside: Option<PathBuf>,
}

/// Rebuilds the store at `store_path` from `copy`. The store that was there
/// (if any) is moved aside, never deleted. `progress` hears (done, total)
/// entries as bundles arrive.
///
/// Without a high-water mark nothing proves the copy is the newest, so a
/// restore then needs `without_mark` (the operator's word, after losing the
/// mark with the HSM); the rebuilt store is then opened with
/// [`super::LocalStore::adopt_mark`].
pub fn restore(
    store_path: &Path,
    copy: &dyn TileFetch,
    verifier: &VerifierKey,
    mark: &dyn HighWaterMark,
    without_mark: bool,
    mut progress: impl FnMut(u64, u64),
) -> Result<RestoreReport> {
    let note = copy
        .get("checkpoint", MAX_CHECKPOINT_LEN)?
        .ok_or_else(|| Error::bad("--from", format!("{} has no checkpoint", copy.describe())))?;
    let checkpoint = SignedCheckpoint::verify(&note, verifier).map_err(|e| {
        broken(
            None,
            format!(
                "the checkpoint of {} does not verify with the log key: {e}",
                copy.describe()
            ),
        )
    })?;
    let marked = super::high_water::load_mark(mark, verifier)?;
    if marked.is_none() && !without_mark {
        return Err(broken(
            None,
            format!(
                "there is no high-water mark in {}, so nothing shows that {} is the newest copy \
                 of the log; if the mark was lost with the HSM, restore the newest copy you \
                 have with --without-mark and treat any gap as an incident",
                mark.describe(),
                copy.describe()
            ),
        ));
    }
    if let Some(marked) = &marked {
        if marked.size > checkpoint.size {
            return Err(broken(
                None,
                format!(
                    "{} holds {} entries, but the CA had already published {} (high-water mark \
                     in {}); restoring it would roll the log back: find a newer copy",
                    copy.describe(),
                    checkpoint.size,
                    marked.size,
                    mark.describe()
                ),
            ));
        }
    }

    let mut entries: Vec<Vec<u8>> = Vec::new();
    let mut serials: Vec<(String, u64)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut tree = CompactRange::new();
    let check_roots = |tree: &CompactRange| -> Result<()> {
        if let Some(marked) = &marked {
            if tree.size() == marked.size && tree.root() != marked.root {
                return Err(broken(
                    None,
                    format!(
                        "{} is a fork: its first {} entries differ from the log the CA published",
                        copy.describe(),
                        marked.size
                    ),
                ));
            }
        }
        Ok(())
    };
    check_roots(&tree)?;
    let bundles = signet_log::tiles::tile_paths(checkpoint.size)
        .into_iter()
        .filter(|p| p.kind() == TileKind::Entries);
    for path in bundles {
        for bytes in fetch_bundle(copy, &path)? {
            let index = tree.size();
            let entry = Entry::from_bytes(&bytes).map_err(|e| {
                broken(
                    Some(index),
                    format!("entry {index} of the copy is not valid: {e}"),
                )
            })?;
            signet_log::entry::check_certificate_contents(&entry)
                .map_err(|e| broken(Some(index), format!("entry {index} of the copy: {e}")))?;
            if let Some(cert) = &entry.certificate {
                let key = SerialKind::of(entry.kind, &cert.bytes.0).key(&cert.serial);
                if !seen.insert(key.clone()) {
                    return Err(broken(
                        Some(index),
                        format!("entry {index} of the copy repeats serial {}", cert.serial),
                    ));
                }
                serials.push((key, index));
            }
            tree.append(merkle::leaf_hash(&bytes), |_, _| {})?;
            check_roots(&tree)?;
            entries.push(bytes);
        }
        progress(tree.size(), checkpoint.size);
    }
    if tree.size() != checkpoint.size || tree.root() != checkpoint.root {
        return Err(broken(
            None,
            format!(
                "the entries of {} do not hash to its signed checkpoint of size {}",
                copy.describe(),
                checkpoint.size
            ),
        ));
    }

    let moved_aside = move_aside(store_path, verifier, checkpoint.size)?;
    let building = store_path.with_extension("restoring");
    let _ = std::fs::remove_file(&building);
    write_restored(&building, &entries, &serials, &note)?;
    std::fs::rename(&building, store_path).map_err(|e| Error::File {
        path: store_path.to_path_buf(),
        reason: format!("cannot put the rebuilt store in place: {e}"),
    })?;
    if let Some(dir) = store_path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::File {
                path: dir.to_path_buf(),
                reason: e.to_string(),
            })?;
    }
    Ok(RestoreReport {
        entries: checkpoint.size,
        moved_aside,
    })
}

/// The entries of one bundle of the checkpoint's tree; a partial bundle
/// the copy lacks is read from the full bundle that extends it.
fn fetch_bundle(copy: &dyn TileFetch, path: &TilePath) -> Result<Vec<Vec<u8>>> {
    let bad = |e: signet_log::Error| Error::bad("--from", format!("tile {path}: {e}"));
    if let Some(bytes) = copy.get(&path.to_string(), MAX_BUNDLE_LEN)? {
        return Ok(EntryBundle::parse(&bytes, path.width())
            .map_err(bad)?
            .entries()
            .to_vec());
    }
    if !path.is_full() {
        let full = TilePath::entries(path.index(), TILE_WIDTH)?;
        if let Some(bytes) = copy.get(&full.to_string(), MAX_BUNDLE_LEN)? {
            let bundle = EntryBundle::parse(&bytes, TILE_WIDTH).map_err(bad)?;
            return Ok(bundle.entries()[..usize::from(path.width())].to_vec());
        }
    }
    Err(Error::bad(
        "--from",
        format!("the copy lacks the entry bundle {path}"),
    ))
}

/// Moves an existing store file aside, refusing if a running CA holds it
/// or if it holds a newer signed checkpoint than the copy (a restore must
/// never replace the log with an older one).
fn move_aside(
    store_path: &Path,
    verifier: &VerifierKey,
    copy_size: u64,
) -> Result<Option<PathBuf>> {
    if !store_path.exists() {
        return Ok(None);
    }
    match redb::Database::open(store_path) {
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(Error::Store(format!(
                "{} is in use by a running signet-ca; stop it before restoring",
                store_path.display()
            )))
        }
        Ok(db) => {
            if let Some(size) = signed_size_of(&db, verifier) {
                if size > copy_size {
                    return Err(broken(
                        None,
                        format!(
                            "the store in place holds a checkpoint of {size} entries signed by \
                             the log key, newer than the copy's {copy_size}: refusing to replace \
                             it with an older log"
                        ),
                    ));
                }
            }
        }
        // Unreadable: it is kept all the same, under another name.
        Err(_) => {}
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let aside = store_path.with_extension(format!("redb.replaced-{stamp}"));
    std::fs::rename(store_path, &aside).map_err(|e| Error::File {
        path: store_path.to_path_buf(),
        reason: format!("cannot move the old store aside: {e}"),
    })?;
    Ok(Some(aside))
}

/// The size of a store's checkpoint, if it has one that the log key signed.
fn signed_size_of(db: &redb::Database, verifier: &VerifierKey) -> Option<u64> {
    use redb::ReadableDatabase;
    let read = db.begin_read().ok()?;
    let meta = read.open_table(super::local::META).ok()?;
    let note = meta.get("checkpoint").ok()??;
    SignedCheckpoint::verify(note.value(), verifier)
        .ok()
        .map(|c| c.size)
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn credentials_in_a_copy_url_never_reach_a_message() {
        assert_eq!(
            redacted("https://ops:s3cret@mirror.example/log/checkpoint"),
            "https://…@mirror.example/log/checkpoint"
        );
        assert_eq!(
            redacted("http://mirror.example/log/"),
            "http://mirror.example/log/"
        );
    }

    #[test]
    fn a_fifo_in_a_copy_is_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("checkpoint");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let copy = super::copy_at(dir.path().to_str().unwrap()).unwrap();
        let err = copy.get("checkpoint", 100).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
