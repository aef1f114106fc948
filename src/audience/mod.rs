//! Who a broadcast goes to: parsing the audience words, checking that the sender may address
//! them, and streaming the resulting users into the delivery queue in batches.
//!
//! Never holds a whole audience in memory: room members come a room at a time and the `server`
//! audience a page at a time; de-duplication is the queue's unique (broadcast, user) pair.

use regex::Regex;
use ruma::{
    events::{room::member::MembershipState, StateEventType},
    OwnedRoomId, OwnedRoomOrAliasId, OwnedUserId, RoomId, UserId,
};
use serde::{Deserialize, Serialize};

use crate::{
    matrix::{membership, AdminUser, MatrixError},
    permissions::Level,
    store::BroadcastId,
    App,
};

/// How many users are written to the queue at once.
const BATCH: usize = 500;
/// Power level a broadcaster needs in a room or space to address its members.
pub const REQUIRED_POWER_LEVEL: i64 = 50;

/// One audience word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `@user:server`.
    User(OwnedUserId),
    /// `#alias:server` or `!room`: its joined members.
    Room(OwnedRoomOrAliasId),
    /// `server`: every active local user.
    Server,
}

/// Options that change who is addressed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudienceOptions {
    /// Users left out (`--except`).
    #[serde(default)]
    pub except: Vec<OwnedUserId>,
    /// Include every room in a space's hierarchy (`--recursive`).
    #[serde(default)]
    pub recursive: bool,
}

/// Why an audience cannot be used; the text is shown to the person who typed the command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AudienceError(pub String);

impl From<crate::store::StoreError> for AudienceError {
    fn from(error: crate::store::StoreError) -> Self {
        tracing::error!(%error, "store error while resolving an audience");
        AudienceError("The bot's database failed; see its log.".into())
    }
}

/// Parses audience words. Room IDs are parsed with ruma (room version 12 IDs have no server).
pub fn parse_targets(words: &[String]) -> Result<Vec<Target>, AudienceError> {
    words
        .iter()
        .map(|word| {
            if word == "server" {
                Ok(Target::Server)
            } else if word.starts_with('@') {
                UserId::parse(word.as_str()).map(Target::User).map_err(|_| {
                    AudienceError(format!("`{word}` is not a valid user ID (like @alice:example.org)"))
                })
            } else if word.starts_with('#') || word.starts_with('!') {
                OwnedRoomOrAliasId::try_from(word.as_str()).map(Target::Room).map_err(|_| {
                    AudienceError(format!(
                        "`{word}` is not a valid room alias or room ID (like #team:example.org)"
                    ))
                })
            } else {
                Err(AudienceError(format!(
                    "`{word}` is not an audience: use @user:server, #room:server, !roomid or server"
                )))
            }
        })
        .collect()
}

/// Parses `--except` values.
pub fn parse_users(words: &[String]) -> Result<Vec<OwnedUserId>, AudienceError> {
    words
        .iter()
        .map(|word| {
            UserId::parse(word.as_str()).map_err(|_| {
                AudienceError(format!("`{word}` after --except is not a user ID (like @bob:example.org)"))
            })
        })
        .collect()
}

/// The room a room target names, resolving an alias.
pub async fn room_id(app: &App, room: &OwnedRoomOrAliasId) -> Result<OwnedRoomId, AudienceError> {
    match OwnedRoomId::try_from(room.as_str()) {
        Ok(room_id) => Ok(room_id),
        Err(_) => {
            let alias = ruma::RoomAliasId::parse(room.as_str())
                .map_err(|_| AudienceError(format!("`{room}` is not a valid alias")))?;
            app.homeserver.resolve_alias(&alias).await.map_err(|error| match error.errcode() {
                Some("M_NOT_FOUND") => AudienceError(format!("There is no room `{room}`.")),
                _ => AudienceError(format!("Cannot look up `{room}`: {error}")),
            })
        }
    }
}

/// Checks that `sender` (of `level`) may address every target: admins anything; broadcasters
/// users, and rooms or spaces where they are joined with power level 50 or more.
pub async fn authorize(
    app: &App,
    sender: &UserId,
    level: Level,
    targets: &[Target],
) -> Result<(), AudienceError> {
    if level >= Level::Admin {
        return Ok(());
    }
    for target in targets {
        match target {
            Target::User(_) => {}
            Target::Server => {
                return Err(AudienceError(
                    "Only admins of the bot may send to `server` (everyone on the homeserver).".into(),
                ))
            }
            Target::Room(room) => {
                let room_id = room_id(app, room).await?;
                let joined = membership(app.homeserver.as_ref(), &room_id, sender)
                    .await
                    .map_err(|error| cannot_see(room, &error))?
                    .is_some_and(|membership| membership == MembershipState::Join.as_str());
                let power =
                    power_level(app, &room_id, sender).await.map_err(|error| cannot_see(room, &error))?;
                if !joined || power < REQUIRED_POWER_LEVEL {
                    return Err(AudienceError(format!(
                        "You may only send to rooms and spaces where you are a member with power level \
                         {REQUIRED_POWER_LEVEL} or more (moderator); in `{room}` you have {power}{}.",
                        if joined { "" } else { " and are not a member" }
                    )));
                }
            }
        }
    }
    Ok(())
}

fn cannot_see(room: &OwnedRoomOrAliasId, error: &MatrixError) -> AudienceError {
    AudienceError(format!("I cannot see `{room}` ({error}). Invite me to it first."))
}

/// `user`'s power level in `room` (users_default when not listed; 0 without power levels).
async fn power_level(app: &App, room: &RoomId, user: &UserId) -> Result<i64, MatrixError> {
    let levels = app.homeserver.state(room, StateEventType::RoomPowerLevels, "").await?;
    let Some(levels) = levels else { return Ok(0) };
    let as_int = |value: &serde_json::Value| value.as_i64().or_else(|| value.as_str()?.parse().ok());
    if let Some(level) = levels.get("users").and_then(|users| users.get(user.as_str())).and_then(as_int) {
        return Ok(level);
    }
    // Room version 12: creators have unlimited power and are not listed in the power levels.
    if app.homeserver.room_creators(room).await?.iter().any(|creator| creator == user) {
        return Ok(i64::MAX);
    }
    Ok(levels.get("users_default").and_then(as_int).unwrap_or(0))
}

/// Who is never addressed, whatever the audience.
pub struct Exclusions<'a> {
    app: &'a App,
    patterns: Vec<Regex>,
    except: &'a [OwnedUserId],
}

impl<'a> Exclusions<'a> {
    pub fn new(app: &'a App, except: &'a [OwnedUserId]) -> Self {
        let patterns = app
            .config
            .broadcast
            .exclude
            .iter()
            .filter_map(|pattern| Regex::new(&format!("^(?:{pattern})$")).ok())
            .collect();
        Self { app, patterns, except }
    }

    /// Whether `user` must be left out.
    pub fn excludes(&self, user: &UserId) -> bool {
        self.app.is_own_user(user)
            || self.except.iter().any(|except| except == user)
            || self.patterns.iter().any(|pattern| pattern.is_match(user.as_str()))
    }

    /// Whether a local account from the admin user list may be addressed. The list does not say
    /// which accounts belong to application services (bridges); those never logged in, so only
    /// such accounts are looked up one by one.
    pub async fn addresses_account(&self, app: &App, account: &AdminUser) -> bool {
        if self.excludes_account(account) {
            return false;
        }
        if account.last_seen_ts.is_none() {
            match app.homeserver.admin_user(&account.name).await {
                Ok(full) => return !self.excludes_account(&full),
                Err(error) => tracing::warn!(%error, user = %account.name, "cannot look up an account"),
            }
        }
        true
    }

    /// Whether a local account must be left out (guests, deactivated, bots, support, and
    /// accounts of application services).
    fn excludes_account(&self, account: &AdminUser) -> bool {
        account.is_guest
            || account.deactivated
            || account.user_type.is_some()
            || account.appservice_id.is_some()
            || self.excludes(&account.name)
    }
}

/// Writes the audience of broadcast `id` into the delivery queue and returns how many
/// recipients it has (duplicates across targets counted once).
pub async fn resolve(
    app: &App,
    id: BroadcastId,
    targets: &[Target],
    options: &AudienceOptions,
) -> Result<u64, AudienceError> {
    let exclusions = Exclusions::new(app, &options.except);
    let mut total = 0;
    for target in targets {
        match target {
            Target::User(user) => {
                if !exclusions.excludes(user) {
                    total += app.store.add_deliveries(id, std::slice::from_ref(user)).await?;
                }
            }
            Target::Room(room) => {
                let room_id = room_id(app, room).await?;
                total += add_room_members(app, id, &room_id, room.as_str(), &exclusions).await?;
                if options.recursive {
                    let children = app.homeserver.space_rooms(&room_id).await.map_err(|error| {
                        AudienceError(format!("Cannot read the rooms of the space `{room}`: {error}"))
                    })?;
                    for child in children {
                        total += add_room_members(app, id, &child, child.as_str(), &exclusions).await?;
                    }
                }
            }
            Target::Server => total += add_server_users(app, id, &exclusions).await?,
        }
    }
    Ok(total)
}

/// Queues the joined members of one room: through the bot's membership, or, when the bot is not
/// in the room, through the Synapse admin API.
async fn add_room_members(
    app: &App,
    id: BroadcastId,
    room: &RoomId,
    shown: &str,
    exclusions: &Exclusions<'_>,
) -> Result<u64, AudienceError> {
    let members: Vec<OwnedUserId> = match app.homeserver.joined_members(room).await {
        Ok(members) => members.into_iter().map(|(user, _)| user).collect(),
        Err(MatrixError::Permanent { .. }) => {
            app.homeserver.admin_room_members(room).await.map_err(|error| {
                if error.is_not_server_admin() {
                    AudienceError(format!(
                        "I am not in `{shown}`, so I cannot see its members. Invite me to it (or make me a \
                         Synapse server admin)."
                    ))
                } else {
                    AudienceError(format!("Cannot read the members of `{shown}`: {error}"))
                }
            })?
        }
        Err(error) => return Err(AudienceError(format!("Cannot read the members of `{shown}`: {error}"))),
    };
    let mut added = 0;
    for chunk in members.chunks(BATCH) {
        let chunk: Vec<OwnedUserId> =
            chunk.iter().filter(|user| !exclusions.excludes(user)).cloned().collect();
        added += app.store.add_deliveries(id, &chunk).await?;
    }
    Ok(added)
}

/// Queues every active local user, a page of the Synapse admin user list at a time.
async fn add_server_users(
    app: &App,
    id: BroadcastId,
    exclusions: &Exclusions<'_>,
) -> Result<u64, AudienceError> {
    let mut from = 0;
    let mut added = 0;
    loop {
        let (page, next) =
            app.homeserver.admin_users_page(from, BATCH as u32, false).await.map_err(|error| {
                if error.is_not_server_admin() {
                    AudienceError(not_server_admin(app))
                } else {
                    AudienceError(format!("Cannot list the users of the homeserver: {error}"))
                }
            })?;
        let mut chunk = Vec::with_capacity(page.len());
        for account in page {
            if exclusions.addresses_account(app, &account).await {
                chunk.push(account.name);
            }
        }
        added += app.store.add_deliveries(id, &chunk).await?;
        match next {
            Some(next) if next > from => from = next,
            _ => return Ok(added),
        }
    }
}

/// What the homeserver admin must do so that the bot may list every user.
pub fn not_server_admin(app: &App) -> String {
    format!(
        "To send to `server` I must be a Synapse server admin, and I am not. A homeserver admin can make me \
         one with the admin API:\n\n```\ncurl -X PUT -H \"Authorization: Bearer <an admin's access token>\" \
         {}/_synapse/admin/v2/users/{} -d '{{\"admin\": true}}'\n```",
        app.config.homeserver.address.as_str().trim_end_matches('/'),
        app.bot
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_users_rooms_aliases_and_server() {
        let words: Vec<String> =
            ["@a:example.org", "#team:example.org", "!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM", "server"]
                .map(String::from)
                .into();
        let targets = parse_targets(&words).unwrap();
        assert!(matches!(&targets[0], Target::User(user) if user == "@a:example.org"));
        assert!(matches!(&targets[1], Target::Room(room) if room.as_str() == "#team:example.org"));
        assert!(matches!(&targets[2], Target::Room(room) if room.as_str().starts_with("!31hne")));
        assert_eq!(targets[3], Target::Server);
    }

    #[test]
    fn bad_words_say_what_is_expected() {
        let error = parse_targets(&["everyone".to_string()]).unwrap_err();
        assert!(error.0.contains("use @user:server, #room:server, !roomid or server"), "{error}");
        assert!(parse_targets(&["@nocolon".to_string()]).is_err());
        assert!(parse_users(&["bob".to_string()]).unwrap_err().0.contains("--except"));
    }
}
