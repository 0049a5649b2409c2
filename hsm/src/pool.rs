//! The worker pool: the one place where blocking device calls (PKCS#11,
//! PC/SC) meet callers.
//!
//! Each PKCS#11 worker thread owns one logged-in session; the PIV backend
//! runs a pool of one that opens the card per job. Callers submit jobs and get
//! a [`Reply`], which a thread can wait on and an async task can await, so
//! no async runtime thread ever blocks inside the token.
//!
//! A job that fails with a session, login or device error is run once more
//! on a freshly opened and logged-in session; a PIN error is never retried,
//! because retries lock real tokens. The sessions share one [`Login`]: logins
//! take turns, and once the token refuses the PIN (at a re-login after the
//! token was reset, or its PIN changed) no session sends it again; every
//! job then answers [`Error::PinRefusedRestart`] until the process restarts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::ObjectHandle;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;

use crate::{Error, Pin, Result};

/// An error inside a job: either a raw PKCS#11 failure, which may be
/// recoverable by reopening the session, or a final one.
#[derive(Debug)]
pub(crate) enum JobError {
    Pkcs11(CkError),
    /// The session lost its login (private objects are invisible).
    NotLoggedIn,
    Final(Error),
}

impl From<CkError> for JobError {
    fn from(err: CkError) -> Self {
        Self::Pkcs11(err)
    }
}

impl From<Error> for JobError {
    fn from(err: Error) -> Self {
        Self::Final(err)
    }
}

impl JobError {
    /// Errors after which a new session (and login) may succeed.
    fn is_recoverable(&self) -> bool {
        matches!(self, Self::NotLoggedIn)
            || matches!(
                self,
                Self::Pkcs11(CkError::Pkcs11(
                    RvError::SessionHandleInvalid
                        | RvError::SessionClosed
                        | RvError::UserNotLoggedIn
                        | RvError::DeviceError
                        | RvError::DeviceRemoved
                        | RvError::TokenNotPresent
                        | RvError::ObjectHandleInvalid
                        | RvError::KeyHandleInvalid,
                    _
                ))
            )
    }

    fn into_error(self) -> Error {
        match self {
            Self::Pkcs11(err) => err.into(),
            Self::NotLoggedIn => Error::Pkcs11 {
                function: "C_FindObjects".into(),
                rv: "the session is not logged in".into(),
            },
            Self::Final(err) => err,
        }
    }
}

/// The user PIN of a pool, shared by its sessions, and whether the token has
/// refused it. Logins take turns through the lock, so however many sessions
/// lose their login at once, a wrong PIN reaches the token exactly once.
pub(crate) struct Login {
    pin: Pin,
    refused: Mutex<bool>,
}

impl Login {
    pub(crate) fn new(pin: Pin) -> Self {
        Self {
            pin,
            refused: Mutex::new(false),
        }
    }

    /// Logs the application in through `session`, unless the token refused
    /// the PIN before. Another session of this process may already have
    /// logged in (login state is per application), which is not an error.
    fn log_in(&self, session: &Session) -> Result<()> {
        // A panic while holding the lock leaves a plain bool behind: still valid.
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        if *refused {
            return Err(Error::PinRefusedRestart);
        }
        let secret = cryptoki::types::AuthPin::from(self.pin.expose());
        match session.login(UserType::User, Some(&secret)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(
                err @ CkError::Pkcs11(
                    RvError::PinIncorrect
                    | RvError::PinLocked
                    | RvError::PinExpired
                    | RvError::PinInvalid
                    | RvError::PinLenRange,
                    _,
                ),
            ) => {
                *refused = true;
                log::error!(
                    "the token refused the PIN ({err}); it is not sent again: every signing job fails until the process is restarted with the right PIN"
                );
                Err(err.into())
            }
            Err(err) => Err(err.into()),
        }
    }

    fn check(&self) -> Result<()> {
        if *self.refused.lock().unwrap_or_else(PoisonError::into_inner) {
            Err(Error::PinRefusedRestart)
        } else {
            Ok(())
        }
    }
}

/// One worker's session and its cache of private-key handles by label.
pub(crate) struct WorkerSession {
    ctx: Pkcs11,
    slot: Slot,
    login: Arc<Login>,
    session: Option<Session>,
    key_handles: HashMap<String, ObjectHandle>,
}

impl WorkerSession {
    /// Opens a read-write session and logs in. Another session of this
    /// process may already have logged in (login state is per application),
    /// which is not an error.
    pub(crate) fn open(ctx: Pkcs11, slot: Slot, login: Arc<Login>) -> Result<Self> {
        let mut worker = Self {
            ctx,
            slot,
            login,
            session: None,
            key_handles: HashMap::new(),
        };
        worker.ensure_session()?;
        Ok(worker)
    }

    fn ensure_session(&mut self) -> Result<&Session> {
        if self.session.is_none() {
            // Once the PIN was refused, no session is even opened.
            self.login.check()?;
            let session = self.ctx.open_rw_session(self.slot)?;
            self.login.log_in(&session)?;
            self.session = Some(session);
        }
        self.session.as_ref().ok_or(Error::PoolStopped)
    }

    /// Runs `op` on the session; on a recoverable failure reopens the session
    /// and runs it once more.
    pub(crate) fn run<T>(
        &mut self,
        mut op: impl FnMut(
            &Session,
            &mut HashMap<String, ObjectHandle>,
        ) -> std::result::Result<T, JobError>,
    ) -> Result<T> {
        self.ensure_session()?;
        let first = match self.session.as_ref() {
            Some(session) => op(session, &mut self.key_handles),
            None => return Err(Error::PoolStopped),
        };
        match first {
            Ok(value) => Ok(value),
            Err(err) if err.is_recoverable() => {
                log::warn!("PKCS#11 session failed ({err:?}); reopening it once");
                self.key_handles.clear();
                if let Some(old) = self.session.take() {
                    // The session is already broken; closing it may fail too.
                    let _ = old.close();
                }
                self.ensure_session()?;
                match self.session.as_ref() {
                    Some(session) => {
                        op(session, &mut self.key_handles).map_err(JobError::into_error)
                    }
                    None => Err(Error::PoolStopped),
                }
            }
            Err(err) => Err(err.into_error()),
        }
    }

    /// Test hook: ends the login behind the pool's back, as a token reset or
    /// another application's logout would.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn logout(&mut self) -> Result<()> {
        if let Some(session) = self.session.as_ref() {
            session.logout()?;
        }
        Ok(())
    }
}

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// A check run on a job's answer by whoever waits for it.
type AnswerCheck<T> = Box<dyn FnOnce(&T) -> Result<()> + Send>;

/// The answer to a submitted job: wait for it from a thread, or await it.
#[must_use = "a reply does nothing unless waited on"]
pub struct Reply<T> {
    answer: oneshot::Receiver<Result<T>>,
    /// A check the waiter runs on the answer (signature verification): CPU
    /// work that must not hold the device's worker thread, which would
    /// serialise it with every other job on that session.
    check: Option<AnswerCheck<T>>,
}

impl<T> Reply<T> {
    /// Blocks the calling thread until the job is done. Not for async tasks.
    pub fn wait(self) -> Result<T> {
        let answer = self.answer.recv().unwrap_or(Err(Error::PoolStopped));
        Self::checked(answer, self.check)
    }

    /// Waits without blocking an async runtime thread.
    pub async fn wait_async(self) -> Result<T> {
        let answer = self.answer.await.unwrap_or(Err(Error::PoolStopped));
        Self::checked(answer, self.check)
    }

    /// The same reply, with `check` run by whoever waits for it before the
    /// answer is handed over.
    pub(crate) fn checked_by(
        mut self,
        check: impl FnOnce(&T) -> Result<()> + Send + 'static,
    ) -> Self {
        self.check = Some(Box::new(check));
        self
    }

    fn checked(answer: Result<T>, check: Option<AnswerCheck<T>>) -> Result<T> {
        let value = answer?;
        if let Some(check) = check {
            check(&value)?;
        }
        Ok(value)
    }
}

/// A fixed set of worker threads, each owning one device handle `S` (a
/// PKCS#11 session, or the means to open a PIV card).
pub(crate) struct WorkerPool<S> {
    jobs: Option<crossbeam_channel::Sender<Job<S>>>,
    workers: Vec<JoinHandle<()>>,
}

/// The PKCS#11 session pool.
pub(crate) type SessionPool = WorkerPool<WorkerSession>;

impl<S: Send + 'static> WorkerPool<S> {
    /// Starts one thread per state. For PKCS#11, sessions are opened (and
    /// the first one logs in) before any thread starts, so a wrong PIN fails
    /// here, once.
    pub(crate) fn start(states: Vec<S>) -> Result<Self> {
        Self::start_named("signet-hsm", states)
    }

    /// As [`WorkerPool::start`], with a thread name prefix.
    pub(crate) fn start_named(prefix: &str, states: Vec<S>) -> Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded::<Job<S>>();
        let mut workers = Vec::with_capacity(states.len());
        for (index, mut state) in states.into_iter().enumerate() {
            let rx = rx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("{prefix}-{index}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        job(&mut state);
                    }
                })
                .map_err(|e| Error::Pkcs11 {
                    function: "spawn worker".into(),
                    rv: e.to_string(),
                })?;
            workers.push(handle);
        }
        Ok(Self {
            jobs: Some(tx),
            workers,
        })
    }

    /// Queues a job for the next free worker.
    pub(crate) fn submit<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut S) -> Result<T> + Send + 'static,
    ) -> Reply<T> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let boxed: Job<S> = Box::new(move |state| {
            // The caller may have given up waiting; that is not an error here.
            let _ = reply_tx.send(job(state));
        });
        if let Some(jobs) = self.jobs.as_ref() {
            // A send error means the workers are gone; the reply then reports PoolStopped.
            let _ = jobs.send(boxed);
        }
        Reply {
            answer: reply_rx,
            check: None,
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.workers.len()
    }
}

impl<S> Drop for WorkerPool<S> {
    fn drop(&mut self) {
        // Closing the queue ends every worker's loop; their handles close on drop.
        self.jobs.take();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}
