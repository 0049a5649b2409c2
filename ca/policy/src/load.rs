//! Finding and reading role and node files.

use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{PolicyError, Result};
use crate::parse::{Builder, MAX_FILE_BYTES};
use crate::policy::Policy;

/// Most role files read in one load.
pub const MAX_FILES: usize = 1000;
/// Deepest directory nesting walked below a named directory.
pub const MAX_DIR_DEPTH: usize = 8;

pub(crate) fn load(paths: &[PathBuf]) -> Result<Policy> {
    let mut builder = Builder::default();
    each_file(paths, |file, text| builder.add(file, text))?;
    builder.finish()
}

/// Reads every file named and every `*.yaml` / `*.yml` file under every
/// directory named (sorted), handing each file's name and text to `add`.
/// Shared by roles and nodes, so both are found and bounded alike.
pub(crate) fn each_file(
    paths: &[PathBuf],
    mut add: impl FnMut(&str, &str) -> Result<()>,
) -> Result<()> {
    if paths.is_empty() {
        return Err(PolicyError::NothingNamed);
    }
    let mut files = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|source| PolicyError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, 0, &mut found)?;
            if found.is_empty() {
                return Err(unusable(path, "holds no .yaml or .yml file"));
            }
            found.sort();
            files.extend(found);
        } else if meta.is_file() {
            files.push(path.clone());
        } else {
            return Err(unusable(path, "not a regular file or a directory"));
        }
        if files.len() > MAX_FILES {
            return Err(unusable(path, &format!("more than {MAX_FILES} role files")));
        }
    }
    for file in &files {
        let text = read(file)?;
        add(&file.display().to_string(), &text)?;
    }
    Ok(())
}

fn unusable(path: &Path, reason: &str) -> PolicyError {
    PolicyError::Unusable {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Collects `*.yaml` and `*.yml` files, skipping hidden entries (`.git`,
/// editor swap files). Symbolic links are followed; the depth bound ends
/// any loop among them.
fn walk(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<()> {
    if depth > MAX_DIR_DEPTH {
        return Err(unusable(
            dir,
            &format!("directories nested deeper than {MAX_DIR_DEPTH} levels"),
        ));
    }
    let read_err = |source| PolicyError::Read {
        path: dir.to_owned(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        let meta = fs::metadata(&path).map_err(|source| PolicyError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk(&path, depth + 1, found)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            if !meta.is_file() {
                return Err(unusable(&path, "not a regular file"));
            }
            found.push(path);
            if found.len() > MAX_FILES {
                return Err(unusable(dir, &format!("more than {MAX_FILES} role files")));
            }
        }
    }
    Ok(())
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`] as UTF-8. Opened
/// without blocking, so a FIFO put in place of a file cannot hang the CA.
fn read(path: &Path) -> Result<String> {
    let io_err = |source| PolicyError::Read {
        path: path.to_owned(),
        source,
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io_err)?;
    if !file.metadata().map_err(io_err)?.is_file() {
        return Err(unusable(path, "not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(unusable(
            path,
            &format!("larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = valid.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        PolicyError::Invalid(Box::new(crate::error::Invalid {
            location: crate::error::Location {
                file: path.display().to_string(),
                line,
                column,
            },
            field: String::new(),
            message: "not UTF-8 text".into(),
        }))
    })
}
