//! The outbound client: matrix-sdk as a typed HTTP client, acting as the bot (or a persona)
//! through the appservice token, behind the traits of [`super::Homeserver`].

use std::time::Duration;

use async_trait::async_trait;
use matrix_sdk::{
    authentication::matrix::MatrixSession, config::RequestConfig, store::RoomLoadSettings, Client, HttpError,
    SessionMeta, SessionTokens,
};
use ruma::{
    api::{
        client::{
            account::register,
            appservice::request_ping,
            device::{get_device, update_device},
            membership,
            message::send_message_event,
            profile::set_profile_field,
            session::login,
            state::get_state_event_for_key,
            uiaa::UserIdentifier,
        },
        MatrixVersion,
    },
    events::{AnyMessageLikeEventContent, StateEventType},
    profile::ProfileFieldValue,
    serde::Raw,
    DeviceId, EventId, OwnedEventId, OwnedMxcUri, OwnedRoomId, OwnedRoomOrAliasId, OwnedTransactionId,
    OwnedUserId, RoomAliasId, RoomId, RoomOrAliasId, TransactionId, UserId,
};

use super::*;
use crate::base::config::Config;

/// The homeserver, through matrix-sdk.
#[derive(Clone)]
pub struct MatrixClient {
    pub(super) client: Client,
    /// Encrypts what the bot sends into encrypted rooms (personas send in the clear).
    encryption: Option<std::sync::Arc<dyn RoomEncryption>>,
    address: String,
    bot: OwnedUserId,
    device_id: ruma::OwnedDeviceId,
    appservice_id: String,
    bot_localpart: String,
    pub(super) as_token: String,
    /// `appservice.msc4190`: devices are created as the appservice, never logged in.
    msc4190: bool,
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
            msc4190: config.appservice.msc4190,
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

    /// `request`, to be sent as the bot without naming a device: for requests made before the
    /// device exists (the homeserver refuses any that names a missing one, `M_UNKNOWN_DEVICE`)
    /// and for reads, which need none.
    fn as_bot_without_device<R>(&self, request: R) -> AsUser<R> {
        AsUser { request, user_id: self.bot.clone(), device_id: None }
    }
}

/// The name the bot's (and each persona's) device shows in clients' session lists.
const DEVICE_DISPLAY_NAME: &str = "matrix-broadcast";

impl MatrixClient {
    /// Creates the device (MSC4190) as the appservice, for the user it acts as: a `PUT` of the
    /// device, which a homeserver with the flag in the registration creates when missing and
    /// otherwise only renames, so doing it twice is harmless.
    async fn create_device(&self) -> Result<(), MatrixError> {
        let mut request = update_device::v3::Request::new(self.device_id.clone());
        request.display_name = Some(DEVICE_DISPLAY_NAME.into());
        call(self.client.send(self.as_bot_without_device(request))).await.map(|_| ())
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
pub(super) fn count_outcome<T>(result: &Result<T, MatrixError>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(error) => error.outcome(),
    };
    metrics::counter!("matrix_broadcast_outbound_requests_total", "outcome" => outcome).increment(1);
}

#[async_trait]
impl Account for MatrixClient {
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
        match call(self.client.send(self.as_bot_without_device(request))).await {
            Ok(_) => return Ok(()),
            Err(error) if error.errcode() == Some("M_NOT_FOUND") => {}
            Err(error) => return Err(error),
        }
        if self.msc4190 {
            return self.create_device().await;
        }
        let identifier = UserIdentifier::from(&self.bot);
        let info = login::v3::LoginInfo::ApplicationService(login::v3::ApplicationService::new(identifier));
        let mut request = login::v3::Request::new(info);
        request.device_id = Some(self.device_id.clone());
        request.initial_device_display_name = Some(DEVICE_DISPLAY_NAME.into());
        match call(self.client.send(request)).await {
            Ok(_) => Ok(()),
            Err(MatrixError::Permanent { errcode, status, message })
                if errcode.as_deref() == Some("M_APPSERVICE_LOGIN_UNSUPPORTED") =>
            {
                Err(MatrixError::Permanent {
                    errcode,
                    status,
                    message: format!(
                        "{message}: this homeserver delegates logins (Matrix Authentication Service); set \
                     appservice.msc4190: true in the config and io.element.msc4190: true in the \
                     registration (generate-registration writes it), then restart Synapse and the bot"
                    ),
                })
            }
            Err(error) => Err(error),
        }
    }

    async fn ping(&self, transaction_id: &str) -> Result<Duration, MatrixError> {
        let mut request = request_ping::v1::Request::new(self.appservice_id.clone());
        request.transaction_id = Some(OwnedTransactionId::from(transaction_id));
        Ok(call(self.client.send(self.as_bot(request))).await?.duration)
    }

    async fn joined_rooms(&self) -> Result<Vec<OwnedRoomId>, MatrixError> {
        let request = membership::joined_rooms::v3::Request::new();
        Ok(call(self.client.send(self.as_bot(request))).await?.joined_rooms)
    }
}

#[async_trait]
impl DirectChats for MatrixClient {
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
}

#[async_trait]
impl RoomApi for MatrixClient {
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

    async fn profile(&self, user: &UserId) -> Result<Option<Option<String>>, MatrixError> {
        let request = ruma::api::client::profile::get_profile::v3::Request::new(user.to_owned());
        // Also the start-up probe's request, made before the device exists.
        match call(self.client.send(self.as_bot_without_device(request))).await {
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
        match call(self.client.send(self.as_bot_without_device(request))).await {
            Ok(response) => Ok(match response.value {
                Some(ProfileFieldValue::DisplayName(name)) => Some(name),
                _ => None,
            }),
            Err(error) if error.errcode() == Some("M_NOT_FOUND") => Ok(None),
            Err(error) => Err(error),
        }
    }
}

#[async_trait]
impl AdminApi for MatrixClient {
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

#[async_trait]
impl CryptoTransport for MatrixClient {
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
}
