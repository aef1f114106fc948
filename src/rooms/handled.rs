//! What became of one inbox event, as its handler tells the dispatcher: handled (it leaves the
//! inbox), failed for a reason that may pass (it is tried again later), or left to background
//! work because what is left waits on another server.

use futures_util::future::BoxFuture;

use crate::base::{e2ee::CryptoError, matrix::MatrixError, store::StoreError};

/// The outcome of handling one inbox event.
pub enum Handled {
    /// Handled, or failed for a reason that trying again cannot change: the event leaves the
    /// inbox.
    Done,
    /// Failed for a reason that may pass (the database, or the homeserver failing or busy): the
    /// event stays in the inbox and is tried again later, a bounded number of times.
    Retry(String),
    /// What is left waits on another server (declining a remote stranger's invite, joining a
    /// remote room): it runs as bounded background work, so that other events keep flowing,
    /// and tells its own outcome at its end.
    Later(BoxFuture<'static, Handled>),
}

/// Why a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Homeserver(#[from] MatrixError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl Failure {
    /// Whether trying again may succeed: a database error, or a homeserver that is failing,
    /// unreachable or busy; not a request it refused.
    fn may_pass(&self) -> bool {
        match self {
            Failure::Store(_) => true,
            Failure::Homeserver(MatrixError::Permanent { .. }) => false,
            Failure::Crypto(CryptoError::Matrix(MatrixError::Permanent { .. })) => false,
            Failure::Homeserver(_) | Failure::Crypto(_) => true,
        }
    }
}

impl Handled {
    /// The outcome of a handler's `result`; a failure is logged with `what` could not be done.
    pub fn of<E: Into<Failure>>(what: &str, result: Result<(), E>) -> Self {
        let Err(error) = result else { return Handled::Done };
        let error = error.into();
        if error.may_pass() {
            tracing::warn!(%error, "{what}; trying again later");
            Handled::Retry(format!("{what}: {error}"))
        } else {
            tracing::warn!(%error, "{what}");
            Handled::Done
        }
    }

    /// Work that waits on another server, run in the background.
    pub fn later(work: impl std::future::Future<Output = Handled> + Send + 'static) -> Self {
        Handled::Later(Box::pin(work))
    }
}

#[cfg(test)]
impl Handled {
    /// Runs work left for the background to its end, inline (unit tests).
    pub async fn to_end(self) -> Handled {
        let mut handled = self;
        while let Handled::Later(work) = handled {
            handled = work.await;
        }
        handled
    }
}
