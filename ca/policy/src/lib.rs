//! Roles and users as YAML kept in git: parsing with file and line, evaluation, diffs.
#![forbid(unsafe_code)]
