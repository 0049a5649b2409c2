//! Small private data objects on the token (`CKO_DATA`), for state that must
//! not live beside the files it protects: the CA keeps its log's high-water
//! mark here, so a storage administrator who restores an old store file
//! cannot also roll the mark back without the token's PIN.

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::{logged_in, Token};
use crate::pool::JobError;
use crate::{Error, Result};

/// The `CKA_APPLICATION` of every data object Signet writes.
const APPLICATION: &str = "signet";

/// The largest value read back: these objects hold a few hundred bytes, and
/// a token that answers with more is not trusted to be holding ours.
const MAX_DATA_OBJECT_LEN: usize = 16 * 1024;

impl Token {
    /// Reads the values of the private data objects with this label (none,
    /// one, or — after an interrupted [`Token::replace_data_object`] — two).
    /// A missing object is only reported as missing while the session is
    /// logged in (private objects are invisible otherwise), so a lost login
    /// can never read as "no object".
    pub fn read_data_objects(&self, label: &str) -> Result<Vec<Vec<u8>>> {
        let label = label.to_owned();
        self.inner
            .pool
            .submit(move |worker| {
                worker.run(|session, _| {
                    find_data_objects(session, &label)?
                        .into_iter()
                        .map(|handle| read_value(session, handle, &label))
                        .collect()
                })
            })
            .wait()
    }

    /// Stores `value` as the private data object with this label: a token
    /// object, private (readable and writable only after login), marked
    /// with the application name "signet". The new object is created before
    /// the old ones are destroyed (tokens commonly refuse to modify a data
    /// object's value in place), so an interruption leaves both, never none.
    pub fn replace_data_object(&self, label: &str, value: &[u8]) -> Result<()> {
        if value.len() > MAX_DATA_OBJECT_LEN {
            return Err(Error::DataObject {
                label: label.to_owned(),
                reason: format!("{} bytes is more than {MAX_DATA_OBJECT_LEN}", value.len()),
            });
        }
        let label = label.to_owned();
        let value = value.to_vec();
        self.inner
            .pool
            .submit(move |worker| {
                worker.run(|session, _| {
                    let old = find_data_objects(session, &label)?;
                    session.create_object(&[
                        Attribute::Class(ObjectClass::DATA),
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Label(label.as_bytes().to_vec()),
                        Attribute::Application(APPLICATION.as_bytes().to_vec()),
                        Attribute::Value(value.clone()),
                    ])?;
                    for handle in old {
                        session.destroy_object(handle)?;
                    }
                    Ok(())
                })
            })
            .wait()
    }

    /// Destroys every data object with this label (the benchmark's scratch
    /// marks; nothing in the CA's own path deletes state).
    pub fn destroy_data_objects(&self, label: &str) -> Result<()> {
        let label = label.to_owned();
        self.inner
            .pool
            .submit(move |worker| {
                worker.run(|session, _| {
                    for handle in find_data_objects(session, &label)? {
                        session.destroy_object(handle)?;
                    }
                    Ok(())
                })
            })
            .wait()
    }
}

/// At most this many of our objects may share a label (one, two after an
/// interrupted replacement, a few after several): more is not our doing.
const MAX_OBJECTS_PER_LABEL: usize = 8;

fn find_data_objects(
    session: &Session,
    label: &str,
) -> std::result::Result<Vec<ObjectHandle>, JobError> {
    // Only private token objects of ours: anyone with a session can plant a
    // public data object under the same label, without the PIN.
    let found = session.find_objects(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Application(APPLICATION.as_bytes().to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ])?;
    if found.is_empty() && !logged_in(session)? {
        return Err(JobError::NotLoggedIn);
    }
    if found.len() > MAX_OBJECTS_PER_LABEL {
        return Err(JobError::Final(Error::DataObject {
            label: label.to_owned(),
            reason: format!(
                "{} objects carry this label; expected at most {MAX_OBJECTS_PER_LABEL}",
                found.len()
            ),
        }));
    }
    Ok(found)
}

fn read_value(
    session: &Session,
    handle: ObjectHandle,
    label: &str,
) -> std::result::Result<Vec<u8>, JobError> {
    let attributes = session.get_attributes(handle, &[AttributeType::Value])?;
    let value = attributes.into_iter().find_map(|a| match a {
        Attribute::Value(v) => Some(v),
        _ => None,
    });
    match value {
        Some(v) if v.len() <= MAX_DATA_OBJECT_LEN => Ok(v),
        Some(v) => Err(JobError::Final(Error::DataObject {
            label: label.to_owned(),
            reason: format!("the token returned {} bytes", v.len()),
        })),
        None => Err(JobError::Final(Error::DataObject {
            label: label.to_owned(),
            reason: "the token returned no value".into(),
        })),
    }
}
