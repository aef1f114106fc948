//! The outbound side: the only code that calls the homeserver.
//!
//! [`Homeserver`] is what the rest of the bot sees: a handful of domain operations, each failing
//! with a classified [`MatrixError`]. [`MatrixClient`] implements it with a `matrix_sdk::Client`
//! used as a typed HTTP client (no sync, no store, no E2EE): ruma request types, the `as_token`
//! as the access token, and [`identity::AsUser`] to act as the bot from its logged-in device.
//! Retries belong to the callers (the delivery queue); the client only retries a couple of
//! times on network errors.

mod client;
#[cfg(test)]
pub mod fake;
mod identity;
mod keys;
mod synapse_admin;

use std::time::Duration;

use async_trait::async_trait;
use matrix_sdk::HttpError;
use ruma::{
    api::error::{ErrorKind, RetryAfter},
    events::{
        room::member::MembershipState, AnyMessageLikeEventContent, MessageLikeEventContent, StateEventType,
    },
    serde::Raw,
    DeviceId, EventId, OwnedEventId, OwnedMxcUri, OwnedRoomId, OwnedTransactionId, OwnedUserId, RoomAliasId,
    RoomId, RoomOrAliasId, TransactionId, UserId,
};

pub use client::MatrixClient;
pub use identity::AsUser;
pub use keys::{CryptoRequest, CryptoResponse};
pub use synapse_admin::AdminUser;

/// The content of `m.room.encryption` the bot puts into rooms it encrypts: Megolm, with the
/// rotation defaults.
pub fn megolm() -> serde_json::Value {
    serde_json::json!({ "algorithm": "m.megolm.v1.aes-sha2" })
}

/// The key in a DM's `m.room.create` content that carries the bot's creation nonce.
pub const DM_NONCE_KEY: &str = "org.matrix_broadcast.dm_nonce";

/// A failed call to the homeserver, classified for the caller's retry decision.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MatrixError {
    /// The homeserver could not be reached or the connection broke; worth retrying.
    #[error("homeserver unreachable: {0}")]
    NetworkFailure(String),
    /// The homeserver answers but is failing (a 5xx, a proxy's error page): it is down or being
    /// restarted; worth retrying, like [`MatrixError::NetworkFailure`].
    #[error("homeserver unavailable: {0}")]
    Unavailable(String),
    /// The homeserver is rate-limiting or busy for now; retry after a while.
    #[error("homeserver busy ({message})")]
    Transient { retry_after: Option<Duration>, message: String },
    /// The request was not made: this side waits for something first (an encrypted DM's
    /// recipient has no device to decrypt with yet). Try again after `retry_after`, without
    /// counting it as a failed try.
    #[error("{message}")]
    Waiting { retry_after: Duration, message: String },
    /// The request will never succeed as it is (forbidden, not found, bad request, …).
    #[error("{message}")]
    Permanent { errcode: Option<String>, status: Option<u16>, message: String },
}

impl MatrixError {
    /// The Matrix `errcode` of a permanent failure, e.g. `M_FORBIDDEN`.
    pub fn errcode(&self) -> Option<&str> {
        match self {
            MatrixError::Permanent { errcode, .. } => errcode.as_deref(),
            _ => None,
        }
    }

    /// A request that could not even be made (content that does not serialise): permanent.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        MatrixError::Permanent { errcode: None, status: None, message: error.to_string() }
    }

    /// Whether the homeserver cannot be reached or is failing as a whole (an outage), rather than
    /// refusing or limiting this one request.
    pub fn is_outage(&self) -> bool {
        matches!(self, MatrixError::NetworkFailure(_) | MatrixError::Unavailable(_))
    }

    /// The metrics label of this failure.
    fn outcome(&self) -> &'static str {
        match self {
            MatrixError::NetworkFailure(_) => "network_failure",
            MatrixError::Unavailable(_) => "unavailable",
            MatrixError::Transient { .. } => "transient",
            MatrixError::Waiting { .. } => "waiting",
            MatrixError::Permanent { .. } => "permanent",
        }
    }
}

impl MatrixError {
    /// Classifies a Matrix error answer (status code + `errcode` body).
    fn from_api_error(api_error: &ruma::api::error::Error) -> Self {
        let status = api_error.status_code.as_u16();
        let kind = api_error.error_kind();
        let message = api_error.to_string();
        if let Some(ErrorKind::LimitExceeded(data)) = kind {
            let retry_after = data.retry_after.as_ref().map(|retry_after| match retry_after {
                RetryAfter::Delay(delay) => *delay,
                RetryAfter::DateTime(at) => {
                    at.duration_since(std::time::SystemTime::now()).unwrap_or_default()
                }
            });
            return MatrixError::Transient { retry_after, message };
        }
        if status >= 500 {
            return MatrixError::Unavailable(message);
        }
        if status == 429 {
            return MatrixError::Transient { retry_after: None, message };
        }
        MatrixError::Permanent {
            errcode: kind.map(|kind| kind.errcode().to_string()),
            status: Some(status),
            message,
        }
    }
}

impl From<HttpError> for MatrixError {
    fn from(error: HttpError) -> Self {
        if let Some(api_error) = error.as_client_api_error() {
            return MatrixError::from_api_error(api_error);
        }
        match error {
            HttpError::Reqwest(error) => MatrixError::NetworkFailure(error.to_string()),
            HttpError::Api(error) => match error.as_ref() {
                // A response that is not a Matrix error: a proxy's 502 page, a truncated body.
                ruma::api::error::FromHttpResponseError::Server(_) => {
                    MatrixError::Unavailable(error.to_string())
                }
                _ => MatrixError::internal(error),
            },
            other => MatrixError::internal(other),
        }
    }
}

/// Facts about a room that decide whether it may be a control room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoomFacts {
    /// The room is a space (`m.space` in its create event).
    pub is_space: bool,
    /// How others than its members can get in or read it (see [`how_open`]); `None` for an
    /// invite-only room that members alone can read.
    pub open: Option<&'static str>,
    /// The room has `m.room.encryption`: the bot cannot read it.
    pub is_encrypted: bool,
}

/// How a room with this join rule and history visibility is open to people who are not its
/// members, as words for a notice ("public", "knockable", …); `None` when it is invite-only
/// and not world-readable. Replies to broadcasts are posted into control rooms, so a control
/// room must be closed.
pub fn how_open(join_rule: Option<&str>, history_visibility: Option<&str>) -> Option<&'static str> {
    match join_rule {
        None | Some("invite") | Some("private") => {}
        Some("public") => return Some("public"),
        Some("knock") | Some("knock_restricted") => return Some("open to knocks"),
        Some("restricted") => return Some("open to the members of other rooms"),
        Some(_) => return Some("not invite-only"),
    }
    (history_visibility == Some("world_readable")).then_some("readable by anyone")
}

/// A room's create event, as far as power goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomCreation {
    pub creators: Vec<OwnedUserId>,
    pub room_version: String,
}

impl RoomCreation {
    /// Whether the creators have unlimited power without being listed in the power levels:
    /// room version 12 and later (and its unstable predecessor `org.matrix.hydra.11`).
    pub fn creators_are_privileged(&self) -> bool {
        self.room_version.starts_with("org.matrix.hydra.")
            || self.room_version.parse::<u32>().is_ok_and(|version| version >= 12)
    }
}

/// Encrypts what the bot sends into encrypted rooms (implemented by the `e2ee` module): the
/// outbound client hands it every message-like event before sending.
#[async_trait]
pub trait RoomEncryption: Send + Sync + 'static {
    /// `content` as `m.room.encrypted` content when `room` is encrypted; `None` when it is not.
    async fn encrypt(
        &self,
        room: &RoomId,
        event_type: &str,
        content: &Raw<AnyMessageLikeEventContent>,
    ) -> Result<Option<Raw<AnyMessageLikeEventContent>>, MatrixError>;
    /// The bot made `room`, its DM with `user`, encrypted or not.
    async fn dm_created(&self, room: &RoomId, user: &UserId, encrypted: bool);
}

/// Everything the bot asks of the homeserver. Implemented by [`MatrixClient`]; tests of the
/// rest of the bot may implement it without a homeserver.
pub trait Homeserver: Account + DirectChats + RoomApi + AdminApi + CryptoTransport {}

impl<T: Account + DirectChats + RoomApi + AdminApi + CryptoTransport + ?Sized> Homeserver for T {}

/// The account the handle acts as, the bot's or a persona's: who it is, its registration, profile and device, and what it has joined.
#[async_trait]
pub trait Account: Send + Sync + 'static {
    /// The homeserver's client-server API base URL, as configured.
    fn address(&self) -> &str;
    /// The bot user this client acts as (or the persona, see [`Homeserver::acting_as`]).
    fn bot(&self) -> &UserId;
    /// The same homeserver, acting as `user` (a persona, in the bot's namespace) from its device
    /// `device`: every call of the handle, `bot()` and the bot's own calls (register, profile,
    /// device, `m.direct`) included, is made as that user.
    fn acting_as(&self, user: &UserId, device: &DeviceId) -> std::sync::Arc<dyn Homeserver>;
    /// Registers the bot user; "already registered" is success.
    async fn register_bot(&self) -> Result<(), MatrixError>;
    /// Sets the bot's display name and avatar; `None` leaves a field as it is.
    async fn set_bot_profile(
        &self,
        displayname: Option<&str>,
        avatar: Option<OwnedMxcUri>,
    ) -> Result<(), MatrixError>;
    /// Makes sure the bot's device exists (logging it in once) so that transaction IDs are
    /// de-duplicated by the homeserver across its restarts.
    async fn ensure_device(&self) -> Result<(), MatrixError>;
    /// Asks the homeserver to ping the bot's own HTTP endpoint; returns the round trip.
    async fn ping(&self, transaction_id: &str) -> Result<Duration, MatrixError>;
    /// Every room the bot has joined.
    async fn joined_rooms(&self) -> Result<Vec<OwnedRoomId>, MatrixError>;
}

/// Private DMs: making one, and the `m.direct` account data that lists them.
#[async_trait]
pub trait DirectChats: Send + Sync + 'static {
    /// Creates a private DM with `user` (preset private_chat, is_direct, no name), tagged with
    /// `nonce` in its create event so that a crash between creating and recording it can be
    /// reconciled; `encrypted` puts `m.room.encryption` (Megolm) into its initial state.
    async fn create_dm(
        &self,
        user: &UserId,
        nonce: &str,
        encrypted: bool,
    ) -> Result<OwnedRoomId, MatrixError>;
    /// Replaces the bot's `m.direct` account data.
    async fn set_direct(&self, content: serde_json::Value) -> Result<(), MatrixError>;
}

/// Rooms, their state and members, and what the bot sends into them; people's profiles.
#[async_trait]
pub trait RoomApi: Send + Sync + 'static {
    /// Joins a room by ID or alias as the bot.
    async fn join(&self, room: &RoomOrAliasId) -> Result<OwnedRoomId, MatrixError>;
    /// Leaves (or declines the invite to) a room as the bot.
    async fn leave(&self, room: &RoomId, reason: Option<String>) -> Result<(), MatrixError>;
    /// Whether the room is a space, public or encrypted.
    async fn room_facts(&self, room: &RoomId) -> Result<RoomFacts, MatrixError>;
    /// Sends a message-like event as the bot; the same `txn_id` never sends twice.
    async fn send_raw(
        &self,
        room: &RoomId,
        txn_id: &TransactionId,
        content: Raw<AnyMessageLikeEventContent>,
        event_type: ruma::events::MessageLikeEventType,
    ) -> Result<OwnedEventId, MatrixError>;
    /// The room an alias points to.
    async fn resolve_alias(&self, alias: &RoomAliasId) -> Result<OwnedRoomId, MatrixError>;
    /// The joined members of a room the bot is in, with their display names.
    async fn joined_members(&self, room: &RoomId) -> Result<Vec<(OwnedUserId, Option<String>)>, MatrixError>;
    /// Every room below a space in its hierarchy (not the space itself), all pages.
    async fn space_rooms(&self, space: &RoomId) -> Result<Vec<OwnedRoomId>, MatrixError>;
    /// The content of the state event `(event_type, state_key)`, `None` when there is none.
    async fn state(
        &self,
        room: &RoomId,
        event_type: StateEventType,
        state_key: &str,
    ) -> Result<Option<serde_json::Value>, MatrixError>;
    /// Who created a room (the sender of its create event and its `additional_creators`) and
    /// its room version.
    async fn room_creation(&self, room: &RoomId) -> Result<RoomCreation, MatrixError>;
    /// One event of a room, as JSON.
    async fn room_event(&self, room: &RoomId, event: &EventId) -> Result<serde_json::Value, MatrixError>;
    /// Sends a state event as the bot, e.g. `m.room.encryption` into a plain DM.
    async fn send_state(
        &self,
        room: &RoomId,
        event_type: StateEventType,
        state_key: &str,
        content: serde_json::Value,
    ) -> Result<OwnedEventId, MatrixError>;
    /// The users joined to or invited into a room the bot is in: who may read what it sends.
    async fn room_members(&self, room: &RoomId) -> Result<Vec<OwnedUserId>, MatrixError>;
    /// Redacts an event the bot sent, with an optional reason.
    async fn redact(
        &self,
        room: &RoomId,
        event: &EventId,
        txn_id: &TransactionId,
        reason: Option<&str>,
    ) -> Result<(), MatrixError>;
    /// Invites `user` into `room`.
    async fn invite(&self, room: &RoomId, user: &UserId) -> Result<(), MatrixError>;
    /// The profile of `user`: `None` when the homeserver knows no such user, else their
    /// display name (`None` when unset). One request tells both.
    async fn profile(&self, user: &UserId) -> Result<Option<Option<String>>, MatrixError>;
    /// A user's display name, `None` when unset.
    async fn displayname(&self, user: &UserId) -> Result<Option<String>, MatrixError>;
}

/// Synapse's admin API: local accounts and the members of any room.
#[async_trait]
pub trait AdminApi: Send + Sync + 'static {
    /// One page of local accounts (Synapse admin API; active, non-guest), by name or newest
    /// first, and the next offset. With `name`, only accounts whose user ID or display name
    /// contains it.
    async fn admin_users_page(
        &self,
        from: u64,
        limit: u32,
        newest_first: bool,
        name: Option<&str>,
    ) -> Result<(Vec<AdminUser>, Option<u64>), MatrixError>;
    /// One local account (Synapse admin API), including its appservice.
    async fn admin_user(&self, user: &UserId) -> Result<AdminUser, MatrixError>;
    /// The members of any room, whether the bot is in it or not (Synapse admin API).
    async fn admin_room_members(&self, room: &RoomId) -> Result<Vec<OwnedUserId>, MatrixError>;
}

/// The requests of end-to-end encryption, sent from the bot's device.
#[async_trait]
pub trait CryptoTransport: Send + Sync + 'static {
    /// Sends one request of the bot's end-to-end encryption from its device.
    async fn crypto(&self, request: CryptoRequest) -> Result<CryptoResponse, MatrixError>;
}

/// Sends typed content through any [`Homeserver`].
pub async fn send<C: MessageLikeEventContent>(
    homeserver: &dyn Homeserver,
    room: &RoomId,
    txn_id: &TransactionId,
    content: &C,
) -> Result<OwnedEventId, MatrixError> {
    let raw = Raw::new(content).map_err(MatrixError::internal)?.cast_unchecked();
    homeserver.send_raw(room, txn_id, raw, content.event_type()).await
}

/// `user`'s membership in `room`, `None` when they never had one.
pub async fn membership(
    homeserver: &dyn Homeserver,
    room: &RoomId,
    user: &UserId,
) -> Result<Option<MembershipState>, MatrixError> {
    let member = homeserver.state(room, StateEventType::RoomMember, user.as_str()).await?;
    Ok(member.and_then(|member| member.get("membership").and_then(|m| m.as_str()).map(MembershipState::from)))
}

/// The transaction ID of what the bot sends because of `event` (an answer, a reaction, a relayed
/// copy): derived from the event, so that handling the event again never sends twice.
pub fn txn_for(kind: &str, event: &EventId) -> OwnedTransactionId {
    OwnedTransactionId::from(format!("{kind}.{}", event.as_str().trim_start_matches('$')))
}

/// Sends JSON content of any message-like `event_type` through any [`Homeserver`].
pub async fn send_json(
    homeserver: &dyn Homeserver,
    room: &RoomId,
    txn_id: &TransactionId,
    event_type: &str,
    content: &serde_json::Value,
) -> Result<OwnedEventId, MatrixError> {
    homeserver.send_raw(room, txn_id, raw_json(content)?, event_type.into()).await
}

/// JSON as a ruma `Raw` value.
fn raw_json<T>(value: &serde_json::Value) -> Result<Raw<T>, MatrixError> {
    serde_json::value::to_raw_value(value).map(Raw::from_json).map_err(MatrixError::internal)
}

#[cfg(test)]
mod tests;
