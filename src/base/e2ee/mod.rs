//! End-to-end encryption on the bot's own device, with the Rust SDK's crypto state machine
//! (`matrix-sdk-crypto`'s [`OlmMachine`]) and its SQLite store. Nothing here implements Olm or
//! Megolm.
//!
//! - What the homeserver pushes for the bot's device (to-device messages, device-list changes,
//!   one-time-key counts: MSC2409 and MSC3202, see [`updates`]) is fed to the machine by the
//!   transaction handler before it answers, so that a room key is stored before it is
//!   acknowledged.
//! - The requests the machine asks for (key upload, query and claim, to-device messages) go
//!   out through the bot's [`Homeserver`] from its device ([`Crypto::flush`], also run in the
//!   background by [`Crypto::run`]).
//! - [`rooms`] knows which rooms are encrypted and who reads them, encrypts what the bot sends
//!   into them (the outbound client calls it) and decrypts what it reads.

pub mod rooms;
#[cfg(test)]
mod tests;
pub mod updates;

use std::{sync::Arc, time::Duration};

use matrix_sdk_crypto::{
    types::requests::{AnyIncomingResponse, AnyOutgoingRequest, OutgoingRequest},
    DecryptionSettings, OlmMachine, TrustRequirement,
};
use matrix_sdk_sqlite::SqliteCryptoStore;
use ruma::{
    api::client::{keys::get_keys, keys::upload_signing_keys, to_device::send_event_to_device},
    TransactionId,
};
use tokio::sync::{watch, Mutex, Notify};

use crate::base::{
    config::Config,
    matrix::{CryptoRequest, CryptoResponse, Homeserver, MatrixError},
};

pub use updates::DeviceUpdates;

/// Why encryption failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The crypto store could not be opened or used.
    #[error("crypto store: {0}")]
    Store(String),
    /// The homeserver refused or could not be reached.
    #[error(transparent)]
    Matrix(#[from] MatrixError),
}

impl From<matrix_sdk_crypto::CryptoStoreError> for CryptoError {
    fn from(error: matrix_sdk_crypto::CryptoStoreError) -> Self {
        CryptoError::Store(error.to_string())
    }
}

impl From<matrix_sdk_crypto::OlmError> for CryptoError {
    fn from(error: matrix_sdk_crypto::OlmError) -> Self {
        CryptoError::Store(error.to_string())
    }
}

/// How often the background task sends what the machine asks for, besides when woken.
const FLUSH_EVERY: Duration = Duration::from_secs(30);
/// How many rounds one flush makes at most: an answer may lead to more requests.
const FLUSH_ROUNDS: usize = 8;

/// The bot's crypto: its [`OlmMachine`] and the homeserver its requests go to.
pub struct Crypto {
    machine: OlmMachine,
    homeserver: Arc<dyn Homeserver>,
    /// One flush at a time (the machine hands out each request until it is marked sent).
    flushing: Mutex<()>,
    /// Woken when the machine may have something to send.
    wake: Notify,
    /// Woken when room keys arrived: undecryptable events may be readable now.
    pub keys_arrived: Arc<Notify>,
    rooms: rooms::Rooms,
}

/// The file matrix-sdk-sqlite keeps a crypto store in, inside the store's directory.
const CRYPTO_STORE_FILE: &str = "matrix-sdk-crypto.sqlite3";

/// Makes the crypto store at `path` the owner's only when it is new: the directory 0700, the
/// database 0600 (matrix-sdk-sqlite would make them with the umask, often world-readable).
fn private_store(path: &std::path::Path) -> Result<(), CryptoError> {
    use crate::base::files::{create_private_dir, create_private_file};
    create_private_dir(path).and_then(|()| create_private_file(&path.join(CRYPTO_STORE_FILE))).map_err(
        |error| {
            let path = path.display();
            CryptoError::Store(format!("cannot create {path}: {error}")) // not for people: a start-up error
        },
    )
}

/// Who the bot trusts to decrypt from: any device (recipients rarely verify).
fn decryption_settings() -> DecryptionSettings {
    DecryptionSettings { sender_device_trust_requirement: TrustRequirement::Untrusted }
}

impl Crypto {
    /// Opens the crypto store of `config` (made on first start) for the bot's device.
    pub async fn open(config: &Config, homeserver: Arc<dyn Homeserver>) -> Result<Arc<Crypto>, CryptoError> {
        let encryption = &config.encryption;
        let path = encryption.store_path(&config.database.uri);
        private_store(&path)?;
        let store = SqliteCryptoStore::open(&path, Some(&encryption.pickle_key)).await.map_err(|error| {
            CryptoError::Store(format!(
                "cannot open {}: {error} (is encryption.pickle_key the one it was made with?)", // not for people: a start-up error
                path.display()
            ))
        })?;
        let device = &config.appservice.device_id;
        let machine =
            OlmMachine::with_store(homeserver.bot(), device, store, None).await.map_err(|error| {
                CryptoError::Store(format!(
                    "{}: {error} (a crypto store belongs to one bot and device)", // not for people: a start-up error
                    path.display()
                ))
            })?;
        tracing::info!(store = %path.display(), ed25519 = %machine.identity_keys().ed25519, "crypto store opened");
        Ok(Arc::new(Crypto {
            machine,
            homeserver,
            flushing: Mutex::new(()),
            wake: Notify::new(),
            keys_arrived: Arc::default(),
            rooms: rooms::Rooms::default(),
        }))
    }

    /// Uploads the device's keys and cross-signs the device, so that clients show it as
    /// verified by its owner. Re-uploading the same cross-signing keys is a no-op for Synapse,
    /// so a start after a crash in the middle finishes the job.
    pub async fn start(&self) -> Result<(), CryptoError> {
        let bootstrap = self.machine.bootstrap_cross_signing(false).await?;
        if let Some(upload) = &bootstrap.upload_keys_req {
            self.send(upload).await?;
        }
        let keys = bootstrap.upload_signing_keys_req;
        let mut request = upload_signing_keys::v3::Request::new();
        request.master_key = keys.master_key.map(|key| key.to_raw());
        request.self_signing_key = keys.self_signing_key.map(|key| key.to_raw());
        request.user_signing_key = keys.user_signing_key.map(|key| key.to_raw());
        let response = self.homeserver.crypto(CryptoRequest::SigningKeysUpload(request)).await?;
        self.mark(&TransactionId::new(), &response).await?;
        let request = CryptoRequest::SignaturesUpload(bootstrap.upload_signatures_req);
        self.homeserver.crypto(request).await?;
        self.flush().await
    }

    /// Sends what the machine asks for, whenever woken and every [`FLUSH_EVERY`], until `stopped`.
    pub async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        while !*stopped.borrow() {
            if let Err(error) = self.flush().await {
                tracing::warn!(%error, "cannot send the requests of end-to-end encryption; trying again");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(FLUSH_EVERY) => {}
                _ = stopped.changed() => {}
            }
        }
    }

    /// Feeds what a transaction brought for the bot's device to the machine, which stores it
    /// (room keys included) before this returns.
    pub async fn receive(&self, updates: DeviceUpdates) -> Result<(), CryptoError> {
        if updates.is_empty() {
            return Ok(());
        }
        let (events, keys) =
            self.machine.receive_sync_changes(updates.changes(), &decryption_settings()).await?;
        tracing::debug!(to_device = events.len(), room_keys = keys.len(), "device updates received");
        if !keys.is_empty() {
            self.keys_arrived.notify_waiters();
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Sends every request the machine has, round after round, until it has none.
    pub async fn flush(&self) -> Result<(), CryptoError> {
        let _one = self.flushing.lock().await;
        for _ in 0..FLUSH_ROUNDS {
            let requests = self.machine.outgoing_requests().await?;
            if requests.is_empty() {
                return Ok(());
            }
            let sent =
                futures_util::future::join_all(requests.iter().map(|request| self.send(request))).await;
            sent.into_iter().collect::<Result<Vec<()>, _>>()?;
        }
        Ok(())
    }

    /// Sends one request of the machine and tells it the answer.
    async fn send(&self, request: &OutgoingRequest) -> Result<(), CryptoError> {
        let Some(outgoing) = as_request(request.request()) else {
            tracing::debug!(request = ?request.request(), "an in-room verification request is not sent");
            return Ok(());
        };
        let response = self.homeserver.crypto(outgoing).await?;
        self.mark(request.request_id(), &response).await
    }

    /// Tells the machine that request `id` was answered with `response`.
    async fn mark(&self, id: &TransactionId, response: &CryptoResponse) -> Result<(), CryptoError> {
        Ok(mark_sent(&self.machine, id, response).await?)
    }
}

/// Tells `machine` that its request `id` was answered with `response`.
pub(crate) async fn mark_sent(
    machine: &OlmMachine,
    id: &TransactionId,
    response: &CryptoResponse,
) -> Result<(), matrix_sdk_crypto::OlmError> {
    match response {
        CryptoResponse::KeysUpload(response) => machine.mark_request_as_sent(id, response).await,
        CryptoResponse::KeysQuery(response) => machine.mark_request_as_sent(id, response).await,
        CryptoResponse::KeysClaim(response) => machine.mark_request_as_sent(id, response).await,
        CryptoResponse::ToDevice(response) => machine.mark_request_as_sent(id, response).await,
        CryptoResponse::SigningKeysUpload(response) => {
            machine.mark_request_as_sent(id, AnyIncomingResponse::SigningKeysUpload(response)).await
        }
        CryptoResponse::SignaturesUpload(response) => machine.mark_request_as_sent(id, response).await,
    }
}

/// The homeserver request for one of the machine's requests; `None` for an in-room
/// verification message, which the bot does not take part in.
fn as_request(request: &AnyOutgoingRequest) -> Option<CryptoRequest> {
    Some(match request {
        AnyOutgoingRequest::KeysUpload(request) => CryptoRequest::KeysUpload(request.clone()),
        AnyOutgoingRequest::KeysQuery(request) => keys_query(request),
        AnyOutgoingRequest::KeysClaim(request) => CryptoRequest::KeysClaim(request.clone()),
        AnyOutgoingRequest::ToDeviceRequest(request) => CryptoRequest::ToDevice(to_device(request)),
        AnyOutgoingRequest::SignatureUpload(request) => CryptoRequest::SignaturesUpload(request.clone()),
        AnyOutgoingRequest::RoomMessage(_) => return None,
    })
}

/// The homeserver request for a key query of the machine.
fn keys_query(request: &matrix_sdk_crypto::types::requests::KeysQueryRequest) -> CryptoRequest {
    let mut query = get_keys::v3::Request::new();
    query.device_keys = request.device_keys.clone();
    query.timeout = request.timeout;
    CryptoRequest::KeysQuery(query)
}

/// The homeserver request for a to-device request of the machine.
fn to_device(
    request: &matrix_sdk_crypto::types::requests::ToDeviceRequest,
) -> send_event_to_device::v3::Request {
    send_event_to_device::v3::Request::new_raw(
        request.event_type.clone(),
        request.txn_id.clone(),
        request.messages.clone(),
    )
}
