//! The outbound side: the only code that calls the homeserver.
//!
//! [`Homeserver`] is what the rest of the bot sees: a handful of domain operations, each failing
//! with a classified [`MatrixError`]. [`MatrixClient`] implements it with a `matrix_sdk::Client`
//! used as a typed HTTP client (no sync, no store, no E2EE): ruma request types, the `as_token`
//! as the access token, and [`identity::AsUser`] to act as the bot from its logged-in device.
//! Retries belong to the callers (the delivery queue); the client only retries a couple of
//! times on network errors.

#[cfg(test)]
pub mod fake;
mod identity;
mod keys;
mod synapse_admin;

use std::time::Duration;

use async_trait::async_trait;
use matrix_sdk::{
    authentication::matrix::MatrixSession, config::RequestConfig, store::RoomLoadSettings, Client, HttpError,
    SessionMeta, SessionTokens,
};
use ruma::{
    api::{
        client::{
            account::register, appservice::request_ping, device::get_device, membership,
            message::send_message_event, profile::set_profile_field, session::login,
            state::get_state_event_for_key, uiaa::UserIdentifier,
        },
        error::{ErrorKind, RetryAfter},
        MatrixVersion,
    },
    events::{
        room::member::MembershipState, AnyMessageLikeEventContent, MessageLikeEventContent, StateEventType,
    },
    profile::ProfileFieldValue,
    serde::Raw,
    DeviceId, EventId, OwnedEventId, OwnedMxcUri, OwnedRoomId, OwnedRoomOrAliasId, OwnedTransactionId,
    OwnedUserId, RoomAliasId, RoomId, RoomOrAliasId, TransactionId, UserId,
};

pub use identity::AsUser;
pub use keys::{CryptoRequest, CryptoResponse};
pub use synapse_admin::AdminUser;

use crate::base::config::Config;

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
#[async_trait]
pub trait Homeserver: Send + Sync + 'static {
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
    /// Creates a private DM with `user` (preset private_chat, is_direct, no name), tagged with
    /// `nonce` in its create event so that a crash between creating and recording it can be
    /// reconciled; `encrypted` puts `m.room.encryption` (Megolm) into its initial state.
    async fn create_dm(
        &self,
        user: &UserId,
        nonce: &str,
        encrypted: bool,
    ) -> Result<OwnedRoomId, MatrixError>;
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
    /// Sends one request of the bot's end-to-end encryption from its device.
    async fn crypto(&self, request: CryptoRequest) -> Result<CryptoResponse, MatrixError>;
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
    /// Every room the bot has joined.
    async fn joined_rooms(&self) -> Result<Vec<OwnedRoomId>, MatrixError>;
    /// The profile of `user`: `None` when the homeserver knows no such user, else their
    /// display name (`None` when unset). One request tells both.
    async fn profile(&self, user: &UserId) -> Result<Option<Option<String>>, MatrixError>;
    /// A user's display name, `None` when unset.
    async fn displayname(&self, user: &UserId) -> Result<Option<String>, MatrixError>;
    /// Replaces the bot's `m.direct` account data.
    async fn set_direct(&self, content: serde_json::Value) -> Result<(), MatrixError>;
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

/// The homeserver, through matrix-sdk.
#[derive(Clone)]
pub struct MatrixClient {
    client: Client,
    /// Encrypts what the bot sends into encrypted rooms (personas send in the clear).
    encryption: Option<std::sync::Arc<dyn RoomEncryption>>,
    address: String,
    bot: OwnedUserId,
    device_id: ruma::OwnedDeviceId,
    appservice_id: String,
    bot_localpart: String,
    as_token: String,
}

impl MatrixClient {
    /// A client for the homeserver of `config`, authenticated with the `as_token`.
    /// Makes no request: `server_versions` is given so that `/versions` is not probed.
    pub async fn new(config: &Config) -> anyhow::Result<Self> {
        let bot = config.bot_user_id()?;
        let client = Client::builder()
            .homeserver_url(config.homeserver.address.as_str())
            .server_versions([MatrixVersion::V1_11])
            .request_config(request_config().retry_limit(2))
            .build()
            .await?;
        let session = MatrixSession {
            meta: SessionMeta { user_id: bot.clone(), device_id: config.appservice.device_id.clone() },
            tokens: SessionTokens { access_token: config.appservice.as_token.clone(), refresh_token: None },
        };
        client.matrix_auth().restore_session(session, RoomLoadSettings::default()).await?;
        Ok(Self {
            client,
            encryption: None,
            address: config.homeserver.address.to_string(),
            bot,
            device_id: config.appservice.device_id.clone(),
            appservice_id: config.appservice.id.clone(),
            bot_localpart: config.appservice.bot.username.clone(),
            as_token: config.appservice.as_token.clone(),
        })
    }

    /// The same client, encrypting what it sends into encrypted rooms with `encryption`.
    pub fn with_encryption(self, encryption: std::sync::Arc<dyn RoomEncryption>) -> Self {
        Self { encryption: Some(encryption), ..self }
    }

    /// `request`, to be sent as the bot from its device.
    fn as_bot<R>(&self, request: R) -> AsUser<R> {
        AsUser { request, user_id: self.bot.clone(), device_id: Some(self.device_id.clone()) }
    }
}

/// How requests are sent: with the `as_token`, and a minute at most.
fn request_config() -> RequestConfig {
    RequestConfig::new().timeout(Duration::from_secs(60)).force_auth()
}

/// Awaits a request (`client.send(…).into_future()`), classifying and counting the outcome.
/// (matrix-sdk does not export the bounds of `Client::send`, so this takes the future.)
async fn call<T>(
    request: impl std::future::IntoFuture<Output = Result<T, HttpError>>,
) -> Result<T, MatrixError> {
    let result = request.into_future().await.map_err(MatrixError::from);
    count_outcome(&result);
    result
}

/// Counts an outbound request by outcome.
fn count_outcome<T>(result: &Result<T, MatrixError>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(error) => error.outcome(),
    };
    metrics::counter!("matrix_broadcast_outbound_requests_total", "outcome" => outcome).increment(1);
}

#[async_trait]
impl Homeserver for MatrixClient {
    fn address(&self) -> &str {
        &self.address
    }

    fn bot(&self) -> &UserId {
        &self.bot
    }

    fn acting_as(&self, user: &UserId, device: &DeviceId) -> std::sync::Arc<dyn Homeserver> {
        std::sync::Arc::new(Self {
            bot: user.to_owned(),
            device_id: device.to_owned(),
            bot_localpart: user.localpart().to_owned(),
            encryption: None,
            ..self.clone()
        })
    }

    async fn register_bot(&self) -> Result<(), MatrixError> {
        let mut request = register::v3::Request::new();
        request.username = Some(self.bot_localpart.clone());
        request.login_type = Some(register::LoginType::ApplicationService);
        request.inhibit_login = true;
        // Registration is made without a device: the device does not exist yet.
        match call(self.client.send(request)).await {
            Ok(_) => Ok(()),
            Err(error) if error.errcode() == Some("M_USER_IN_USE") => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn set_bot_profile(
        &self,
        displayname: Option<&str>,
        avatar: Option<OwnedMxcUri>,
    ) -> Result<(), MatrixError> {
        if let Some(name) = displayname {
            let value = ProfileFieldValue::DisplayName(name.to_owned());
            call(self.client.send(self.as_bot(set_profile_field::v3::Request::new(self.bot.clone(), value))))
                .await?;
        }
        if let Some(avatar) = avatar {
            let value = ProfileFieldValue::AvatarUrl(avatar);
            call(self.client.send(self.as_bot(set_profile_field::v3::Request::new(self.bot.clone(), value))))
                .await?;
        }
        Ok(())
    }

    async fn ensure_device(&self) -> Result<(), MatrixError> {
        let request = get_device::v3::Request::new(self.device_id.clone());
        let wrapped = AsUser { request, user_id: self.bot.clone(), device_id: None };
        match call(self.client.send(wrapped)).await {
            Ok(_) => return Ok(()),
            Err(error) if error.errcode() == Some("M_NOT_FOUND") => {}
            Err(error) => return Err(error),
        }
        let identifier = UserIdentifier::from(&self.bot);
        let info = login::v3::LoginInfo::ApplicationService(login::v3::ApplicationService::new(identifier));
        let mut request = login::v3::Request::new(info);
        request.device_id = Some(self.device_id.clone());
        request.initial_device_display_name = Some("matrix-broadcast".into());
        call(self.client.send(request)).await?;
        Ok(())
    }

    async fn ping(&self, transaction_id: &str) -> Result<Duration, MatrixError> {
        let mut request = request_ping::v1::Request::new(self.appservice_id.clone());
        request.transaction_id = Some(OwnedTransactionId::from(transaction_id));
        Ok(call(self.client.send(self.as_bot(request))).await?.duration)
    }

    async fn join(&self, room: &RoomOrAliasId) -> Result<OwnedRoomId, MatrixError> {
        let request = membership::join_room_by_id_or_alias::v3::Request::new(OwnedRoomOrAliasId::from(room));
        Ok(call(self.client.send(self.as_bot(request))).await?.room_id)
    }

    async fn leave(&self, room: &RoomId, reason: Option<String>) -> Result<(), MatrixError> {
        let mut request = membership::leave_room::v3::Request::new(room.to_owned());
        request.reason = reason;
        call(self.client.send(self.as_bot(request))).await?;
        Ok(())
    }

    async fn room_facts(&self, room: &RoomId) -> Result<RoomFacts, MatrixError> {
        let create = self.state(room, StateEventType::RoomCreate, "").await?;
        let join_rules = self.state(room, StateEventType::RoomJoinRules, "").await?;
        let visibility = self.state(room, StateEventType::RoomHistoryVisibility, "").await?;
        let encryption = self.state(room, StateEventType::RoomEncryption, "").await?;
        let field = |content: &Option<serde_json::Value>, key: &str| {
            content
                .as_ref()
                .and_then(|content| content.get(key))
                .and_then(|value| value.as_str().map(str::to_owned))
        };
        Ok(RoomFacts {
            is_space: field(&create, "type").as_deref() == Some("m.space"),
            open: how_open(
                field(&join_rules, "join_rule").as_deref(),
                field(&visibility, "history_visibility").as_deref(),
            ),
            is_encrypted: encryption.is_some(),
        })
    }

    async fn send_raw(
        &self,
        room: &RoomId,
        txn_id: &TransactionId,
        content: Raw<AnyMessageLikeEventContent>,
        event_type: ruma::events::MessageLikeEventType,
    ) -> Result<OwnedEventId, MatrixError> {
        let encrypted = match &self.encryption {
            Some(encryption) => encryption.encrypt(room, &event_type.to_string(), &content).await?,
            None => None,
        };
        let (event_type, content) = match encrypted {
            // The same transaction ID: a copy encrypted again after a crash is not sent twice.
            Some(encrypted) => (ruma::events::MessageLikeEventType::RoomEncrypted, encrypted),
            None => (event_type, content),
        };
        let request =
            send_message_event::v3::Request::new_raw(room.to_owned(), txn_id.to_owned(), event_type, content);
        Ok(call(self.client.send(self.as_bot(request))).await?.event_id)
    }

    async fn resolve_alias(&self, alias: &RoomAliasId) -> Result<OwnedRoomId, MatrixError> {
        let request = ruma::api::client::alias::get_alias::v3::Request::new(alias.to_owned());
        Ok(call(self.client.send(self.as_bot(request))).await?.room_id)
    }

    async fn joined_members(&self, room: &RoomId) -> Result<Vec<(OwnedUserId, Option<String>)>, MatrixError> {
        let request = membership::joined_members::v3::Request::new(room.to_owned());
        let response = call(self.client.send(self.as_bot(request))).await?;
        Ok(response.joined.into_iter().map(|(user, member)| (user, member.display_name)).collect())
    }

    async fn space_rooms(&self, space: &RoomId) -> Result<Vec<OwnedRoomId>, MatrixError> {
        let mut rooms = Vec::new();
        let mut from = None;
        loop {
            let mut request = ruma::api::client::space::get_hierarchy::v1::Request::new(space.to_owned());
            request.from = from.take();
            let response = call(self.client.send(self.as_bot(request))).await?;
            rooms.extend(
                response.rooms.into_iter().map(|chunk| chunk.summary.room_id).filter(|room| room != space),
            );
            match response.next_batch {
                Some(next) => from = Some(next),
                None => return Ok(rooms),
            }
        }
    }

    async fn state(
        &self,
        room: &RoomId,
        event_type: StateEventType,
        state_key: &str,
    ) -> Result<Option<serde_json::Value>, MatrixError> {
        let request =
            get_state_event_for_key::v3::Request::new(room.to_owned(), event_type, state_key.to_owned());
        match call(self.client.send(self.as_bot(request))).await {
            Ok(response) => Ok(serde_json::from_str(response.event_or_content.get()).ok()),
            Err(error) if error.errcode() == Some("M_NOT_FOUND") => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn room_creation(&self, room: &RoomId) -> Result<RoomCreation, MatrixError> {
        let mut request = get_state_event_for_key::v3::Request::new(
            room.to_owned(),
            StateEventType::RoomCreate,
            String::new(),
        );
        request.format = get_state_event_for_key::v3::StateEventFormat::Event;
        let response = call(self.client.send(self.as_bot(request))).await?;
        let event: serde_json::Value =
            serde_json::from_str(response.event_or_content.get()).unwrap_or_default();
        let content = &event["content"];
        let creators = std::iter::once(&event["sender"])
            .chain(content["additional_creators"].as_array().into_iter().flatten())
            .chain(std::iter::once(&content["creator"]))
            .filter_map(|creator| creator.as_str())
            .filter_map(|creator| UserId::parse(creator).ok())
            .collect();
        // A create event without a version is of room version 1.
        let room_version = content["room_version"].as_str().unwrap_or("1").to_owned();
        Ok(RoomCreation { creators, room_version })
    }

    async fn room_event(&self, room: &RoomId, event: &EventId) -> Result<serde_json::Value, MatrixError> {
        let request =
            ruma::api::client::room::get_room_event::v3::Request::new(room.to_owned(), event.to_owned());
        let response = call(self.client.send(self.as_bot(request))).await?;
        serde_json::from_str(response.event.json().get()).map_err(|error| MatrixError::Permanent {
            errcode: None,
            status: None,
            message: error.to_string(),
        })
    }

    async fn create_dm(
        &self,
        user: &UserId,
        nonce: &str,
        encrypted: bool,
    ) -> Result<OwnedRoomId, MatrixError> {
        use ruma::api::client::room::{create_room, create_room::v3::RoomPreset};
        let mut request = create_room::v3::Request::new();
        request.preset = Some(RoomPreset::PrivateChat);
        request.is_direct = true;
        request.invite = vec![user.to_owned()];
        request.creation_content = Some(raw_json(&serde_json::json!({ DM_NONCE_KEY: nonce }))?);
        if encrypted {
            let encryption = serde_json::json!({
                "type": "m.room.encryption", "state_key": "", "content": megolm(),
            });
            request.initial_state = vec![raw_json(&encryption)?];
        }
        // Not idempotent: never retried here (a slow success plus a retry would invite the
        // recipient twice); the caller reconciles an unknown outcome through the nonce.
        let once = request_config().disable_retry();
        let room = call(self.client.send(self.as_bot(request)).with_request_config(once)).await?.room_id;
        if let Some(encryption) = &self.encryption {
            encryption.dm_created(&room, user, encrypted).await;
        }
        Ok(room)
    }

    async fn send_state(
        &self,
        room: &RoomId,
        event_type: StateEventType,
        state_key: &str,
        content: serde_json::Value,
    ) -> Result<OwnedEventId, MatrixError> {
        let request = ruma::api::client::state::send_state_event::v3::Request::new_raw(
            room.to_owned(),
            event_type,
            state_key.to_owned(),
            raw_json(&content)?,
        );
        Ok(call(self.client.send(self.as_bot(request))).await?.event_id)
    }

    async fn room_members(&self, room: &RoomId) -> Result<Vec<OwnedUserId>, MatrixError> {
        let request = membership::get_member_events::v3::Request::new(room.to_owned());
        let response = call(self.client.send(self.as_bot(request))).await?;
        let members = response.chunk.iter().filter_map(|event| {
            let event: serde_json::Value = serde_json::from_str(event.json().get()).ok()?;
            let reads = matches!(event["content"]["membership"].as_str(), Some("join" | "invite"));
            reads.then(|| UserId::parse(event["state_key"].as_str()?).ok())?
        });
        Ok(members.collect())
    }

    async fn crypto(&self, request: CryptoRequest) -> Result<CryptoResponse, MatrixError> {
        let name = request.name();
        let response = match request {
            CryptoRequest::KeysUpload(request) => {
                CryptoResponse::KeysUpload(call(self.client.send(self.as_bot(request))).await?)
            }
            CryptoRequest::KeysQuery(request) => {
                CryptoResponse::KeysQuery(call(self.client.send(self.as_bot(request))).await?)
            }
            CryptoRequest::KeysClaim(request) => {
                CryptoResponse::KeysClaim(call(self.client.send(self.as_bot(request))).await?)
            }
            CryptoRequest::ToDevice(request) => {
                CryptoResponse::ToDevice(call(self.client.send(self.as_bot(request))).await?)
            }
            CryptoRequest::SigningKeysUpload(request) => {
                CryptoResponse::SigningKeysUpload(call(self.client.send(self.as_bot(request))).await?)
            }
            CryptoRequest::SignaturesUpload(request) => {
                CryptoResponse::SignaturesUpload(call(self.client.send(self.as_bot(request))).await?)
            }
        };
        tracing::debug!(request = name, "crypto request sent");
        Ok(response)
    }

    async fn redact(
        &self,
        room: &RoomId,
        event: &EventId,
        txn_id: &TransactionId,
        reason: Option<&str>,
    ) -> Result<(), MatrixError> {
        let mut request = ruma::api::client::redact::redact_event::v3::Request::new(
            room.to_owned(),
            event.to_owned(),
            txn_id.to_owned(),
        );
        request.reason = reason.map(str::to_owned);
        call(self.client.send(self.as_bot(request))).await?;
        Ok(())
    }

    async fn invite(&self, room: &RoomId, user: &UserId) -> Result<(), MatrixError> {
        use membership::invite_user::v3::{InvitationRecipient, InviteUserId, Request};
        let recipient = InvitationRecipient::UserId(InviteUserId::new(user.to_owned()));
        call(self.client.send(self.as_bot(Request::new(room.to_owned(), recipient)))).await?;
        Ok(())
    }

    async fn joined_rooms(&self) -> Result<Vec<OwnedRoomId>, MatrixError> {
        let request = membership::joined_rooms::v3::Request::new();
        Ok(call(self.client.send(self.as_bot(request))).await?.joined_rooms)
    }

    async fn profile(&self, user: &UserId) -> Result<Option<Option<String>>, MatrixError> {
        let request = ruma::api::client::profile::get_profile::v3::Request::new(user.to_owned());
        match call(self.client.send(self.as_bot(request))).await {
            Ok(profile) => {
                let name = profile.get("displayname").and_then(|name| name.as_str()).map(str::to_owned);
                Ok(Some(name))
            }
            // Synapse answers 404 with M_NOT_FOUND or, for an unknown local user, M_UNKNOWN.
            Err(MatrixError::Permanent { status: Some(404), .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn displayname(&self, user: &UserId) -> Result<Option<String>, MatrixError> {
        use ruma::api::client::profile::get_profile_field;
        let request = get_profile_field::v3::Request::new(
            user.to_owned(),
            ruma::profile::ProfileFieldName::DisplayName,
        );
        match call(self.client.send(self.as_bot(request))).await {
            Ok(response) => Ok(match response.value {
                Some(ProfileFieldValue::DisplayName(name)) => Some(name),
                _ => None,
            }),
            Err(error) if error.errcode() == Some("M_NOT_FOUND") => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn set_direct(&self, content: serde_json::Value) -> Result<(), MatrixError> {
        use ruma::api::client::config::set_global_account_data;
        let request = set_global_account_data::v3::Request::new_raw(
            self.bot.clone(),
            ruma::events::GlobalAccountDataEventType::Direct,
            raw_json(&content)?,
        );
        call(self.client.send(self.as_bot(request))).await?;
        Ok(())
    }

    async fn admin_users_page(
        &self,
        from: u64,
        limit: u32,
        newest_first: bool,
        name: Option<&str>,
    ) -> Result<(Vec<AdminUser>, Option<u64>), MatrixError> {
        self.admin_users_page_impl(from, limit, newest_first, name).await
    }

    async fn admin_user(&self, user: &UserId) -> Result<AdminUser, MatrixError> {
        self.admin_user_impl(user).await
    }

    async fn admin_room_members(&self, room: &RoomId) -> Result<Vec<OwnedUserId>, MatrixError> {
        self.admin_room_members_impl(room).await
    }
}

#[cfg(test)]
mod tests;
