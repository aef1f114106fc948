//! Who a broadcast goes to: parsing the audience words, checking that the sender may address
//! them, and streaming the resulting users into the delivery queue in batches.
//!
//! Never holds a whole audience in memory: room members come a room at a time and the `server`
//! audience a page at a time; de-duplication is the queue's unique (broadcast, user) pair.

mod exclusions;
mod rights;

pub use exclusions::Exclusions;
pub use rights::{authorize, rooms, Rooms};

use futures_util::{stream, StreamExt};
use regex::Regex;
use ruma::{
    events::{room::member::MembershipState, StateEventType},
    OwnedRoomId, OwnedRoomOrAliasId, OwnedUserId, RoomId, UserId,
};

use crate::{
    base::{
        i18n::{self, Arg, Language},
        matrix::{membership, AdminUser, Homeserver, MatrixError},
        permissions::Level,
        registration::is_own_user,
        store::{BroadcastId, Recipient, Store, StoreError},
    },
    rooms::notices::error_text,
};

/// How many users are written to the queue (and read from the user list) at once.
const BATCH: usize = 500;
/// How many users are looked up at once (`@user` words, accounts of room members).
const PROFILE_LOOKUPS: usize = 8;
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
    /// `search:<text>`: every active local user whose user ID or display name contains the text.
    Search(String),
}

/// The audience word of a search: `search:` and the text.
const SEARCH: &str = "search:";

impl Target {
    /// The word that [`parse_targets`] reads back as this target.
    pub fn word(&self) -> String {
        match self {
            Target::User(user) => user.to_string(),
            Target::Room(room) => room.to_string(),
            Target::Server => "server".to_owned(),
            Target::Search(text) => format!("{SEARCH}{text}"),
        }
    }
}

/// An audience checked by [`authorize`] for the person who sends to it: each alias resolved to
/// the room that passed the check. Only `authorize` makes one from words a person typed; a
/// broadcast stores its [`words`](Authorized::words), and its resolution reads them back with
/// [`Authorized::stored`], never parsing or checking them a second time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized(Vec<Target>);

impl Authorized {
    pub fn targets(&self) -> &[Target] {
        &self.0
    }

    /// The words a broadcast stores.
    pub fn words(&self) -> Vec<String> {
        self.0.iter().map(Target::word).collect()
    }

    /// The audience a broadcast stored, checked when its command came. An alias here was
    /// stored by an older version: it is refused, since a second look-up could answer another
    /// room than the one checked.
    pub fn stored(words: &[String]) -> Result<Self, AudienceError> {
        let targets = parse_targets(words)?;
        for target in &targets {
            if let Target::Room(room) = target {
                if room.is_room_alias_id() {
                    return Err(AudienceError::new(
                        "audience-alias-not-resolved",
                        &[("room", room.as_str())],
                    ));
                }
            }
        }
        Ok(Self(targets))
    }

    /// The rooms typed, each with the word it was typed as.
    fn rooms(&self) -> impl Iterator<Item = (OwnedRoomId, &str)> {
        self.0.iter().filter_map(|target| match target {
            Target::Room(room) => Some((OwnedRoomId::try_from(room.as_str()).ok()?, room.as_str())),
            _ => None,
        })
    }
}

/// Why an audience cannot be used: a message of the catalogue and its arguments, written in
/// the language of whoever reads it ([`AudienceError::text`]; the log gets English).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceError {
    key: &'static str,
    args: Vec<(&'static str, String)>,
}

impl AudienceError {
    /// The message `key` of the catalogue with text arguments.
    pub fn new(key: &'static str, args: &[(&'static str, &str)]) -> Self {
        Self { key, args: args.iter().map(|(name, value)| (*name, value.to_string())).collect() }
    }

    /// The text shown to the person who typed the command.
    pub fn text(&self, language: Language) -> String {
        let args: Vec<(&str, Arg)> =
            self.args.iter().map(|(name, value)| (*name, Arg::from(value))).collect();
        i18n::text(language, self.key, &args)
    }
}

impl std::fmt::Display for AudienceError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.text(Language::En))
    }
}

impl std::error::Error for AudienceError {}

impl From<StoreError> for AudienceError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "store error while resolving an audience");
        AudienceError::new("audience-database-failed", &[])
    }
}

/// Parses audience words. Room IDs are parsed with ruma (room version 12 IDs have no server).
pub fn parse_targets(words: &[String]) -> Result<Vec<Target>, AudienceError> {
    words
        .iter()
        .map(|word| {
            if word == "server" {
                Ok(Target::Server)
            } else if let Some(text) = word.strip_prefix(SEARCH) {
                match text.trim() {
                    "" => Err(AudienceError::new("audience-empty-search", &[("word", word)])),
                    text => Ok(Target::Search(text.to_owned())),
                }
            } else if word.starts_with('@') {
                UserId::parse(word.as_str())
                    .map(Target::User)
                    .map_err(|_| AudienceError::new("audience-bad-user", &[("word", word)]))
            } else if word.starts_with('#') || word.starts_with('!') {
                OwnedRoomOrAliasId::try_from(word.as_str())
                    .map(Target::Room)
                    .map_err(|_| AudienceError::new("audience-bad-room", &[("word", word)]))
            } else {
                Err(AudienceError::new("audience-bad-word", &[("word", word)]))
            }
        })
        .collect()
}

/// Parses `--except` values.
pub fn parse_users(words: &[String]) -> Result<Vec<OwnedUserId>, AudienceError> {
    words
        .iter()
        .map(|word| {
            UserId::parse(word.as_str())
                .map_err(|_| AudienceError::new("audience-bad-except", &[("word", word)]))
        })
        .collect()
}

/// The room a room target names, resolving an alias.
pub async fn room_id(
    homeserver: &dyn Homeserver,
    room: &OwnedRoomOrAliasId,
) -> Result<OwnedRoomId, AudienceError> {
    match OwnedRoomId::try_from(room.as_str()) {
        Ok(room_id) => Ok(room_id),
        Err(_) => {
            let alias = ruma::RoomAliasId::parse(room.as_str())
                .map_err(|_| AudienceError::new("audience-bad-alias", &[("room", room.as_str())]))?;
            homeserver.resolve_alias(&alias).await.map_err(|error| match error.errcode() {
                Some("M_NOT_FOUND") => AudienceError::new("audience-no-room", &[("room", room.as_str())]),
                _ => AudienceError::new(
                    "audience-cannot-look-up",
                    &[("room", room.as_str()), ("error", &error_text(&error))],
                ),
            })
        }
    }
}

/// Writes the audience of broadcast `id` into the delivery queue: the users among `targets`, the
/// members of `rooms` (see [`rooms`]) and, for `server`, every active local account, each with
/// the display name the listing gave (`needs_names`: whether the message uses them). Returns how
/// many recipients it has (duplicates across targets counted once).
#[allow(clippy::too_many_arguments)]
pub async fn resolve(
    store: &Store,
    homeserver: &dyn Homeserver,
    exclusions: &Exclusions<'_>,
    id: BroadcastId,
    targets: &[Target],
    rooms: &Rooms,
    needs_names: bool,
    language: Language,
) -> Result<u64, AudienceError> {
    let named: Vec<&OwnedUserId> = targets
        .iter()
        .filter_map(|target| match target {
            Target::User(user) if !exclusions.excludes(user) => Some(user),
            _ => None,
        })
        .collect();
    let mut total = queue_named(store, homeserver, id, &named, needs_names, language).await?;
    if targets.contains(&Target::Server) {
        total += queue_accounts(store, homeserver, exclusions, id, None).await?;
    }
    for target in targets {
        if let Target::Search(text) = target {
            total += queue_accounts(store, homeserver, exclusions, id, Some(text)).await?;
        }
    }
    for (room, shown) in &rooms.reached {
        let members = room_members(homeserver, room, shown).await?;
        total += queue(store, homeserver, id, &members, exclusions).await?;
    }
    Ok(total)
}

/// Queues the users named by `@user` words. Someone seen before is known to exist, with the
/// display name they last showed (their member event in a DM, or an earlier look-up); someone
/// the bot has a DM with exists too. Only the others are looked up, a few at a time: the profile
/// tells whether they exist and their display name, which is kept for next time. Someone the
/// homeserver does not know is recorded as failed, with the reason, and gets no room. When the
/// message needs no names, a DM is enough to be known.
async fn queue_named(
    store: &Store,
    homeserver: &dyn Homeserver,
    id: BroadcastId,
    users: &[&OwnedUserId],
    needs_names: bool,
    language: Language,
) -> Result<u64, StoreError> {
    let users: Vec<OwnedUserId> = users.iter().copied().cloned().collect();
    let mut names = store.displaynames_of(&users).await?;
    let (seen, mut users): (Vec<_>, Vec<_>) = users.into_iter().partition(|user| names.contains_key(user));
    let seen: Vec<Recipient> =
        seen.into_iter().map(|user| Recipient::new(user.clone(), names.remove(&user))).collect();
    let mut added = store.add_recipients(id, &seen).await?;
    if !needs_names {
        let known = store.live_dms_of(&users).await?;
        let (have_dm, others): (Vec<_>, Vec<_>) =
            users.into_iter().partition(|user| known.contains_key(user));
        let have_dm: Vec<Recipient> = have_dm.into_iter().map(Recipient::unnamed).collect();
        added += store.add_recipients(id, &have_dm).await?;
        users = others;
    }
    let profiles: Vec<(OwnedUserId, _)> = stream::iter(users)
        .map(|user: OwnedUserId| async move {
            let profile = homeserver.profile(&user).await;
            (user, profile)
        })
        .buffered(PROFILE_LOOKUPS)
        .collect()
        .await;
    let (mut found, mut unknown) = (Vec::new(), Vec::new());
    for (user, profile) in profiles {
        match profile {
            Ok(Some(displayname)) => found.push(Recipient::new(user, displayname)),
            Ok(None) => unknown.push(user),
            Err(error) => {
                // The delivery will tell; the name is looked up then if the message needs it.
                tracing::warn!(%error, %user, "cannot look up a user's profile");
                found.push(Recipient::unnamed(user));
            }
        }
    }
    let looked_up: Vec<(OwnedUserId, Option<String>)> = found
        .iter()
        .filter(|recipient| recipient.displayname.is_some())
        .map(|recipient| (recipient.user.clone(), recipient.displayname.clone()))
        .collect();
    store.remember_displaynames(&looked_up).await?;
    added += store.add_recipients(id, &found).await?;
    let reason = crate::base::i18n::t!(language, "audience-user-does-not-exist");
    added += store.add_failed_deliveries(id, &unknown, &reason).await?;
    Ok(added)
}

/// Queues every active local account that may be addressed (with `search`, those whose user ID
/// or display name contains it), a page of the user list at a time.
async fn queue_accounts(
    store: &Store,
    homeserver: &dyn Homeserver,
    exclusions: &Exclusions<'_>,
    id: BroadcastId,
    search: Option<&str>,
) -> Result<u64, AudienceError> {
    let mut total = 0;
    let mut pages = AccountPages::new(homeserver, false);
    pages.search = search;
    while let Some(page) = pages.next().await.map_err(|error| cannot_list_users(homeserver, error))? {
        let mut chunk = Vec::with_capacity(page.len());
        for account in page {
            if exclusions.addresses_account(homeserver, &account).await {
                chunk.push(Recipient::new(account.name, account.displayname));
            }
        }
        total += store.add_recipients(id, &chunk).await?;
    }
    Ok(total)
}

/// Queues `members` (except the excluded) into broadcast `id`, a batch at a time. They are
/// checked together, so that the user list is read at most once for a room.
async fn queue(
    store: &Store,
    homeserver: &dyn Homeserver,
    id: BroadcastId,
    members: &[Recipient],
    exclusions: &Exclusions<'_>,
) -> Result<u64, StoreError> {
    let addressed = exclusions.addressable(store, homeserver, members).await?;
    let mut added = 0;
    for chunk in addressed.chunks(BATCH) {
        added += store.add_recipients(id, chunk).await?;
    }
    Ok(added)
}

/// The joined members of one room (`shown` names it in errors), with their display names:
/// through the bot's membership, or, when the bot is not in the room, through the Synapse admin
/// API (which gives no names).
pub async fn room_members(
    homeserver: &dyn Homeserver,
    room: &RoomId,
    shown: &str,
) -> Result<Vec<Recipient>, AudienceError> {
    match homeserver.joined_members(room).await {
        Ok(members) => Ok(members.into_iter().map(|(user, name)| Recipient::new(user, name)).collect()),
        Err(MatrixError::Permanent { .. }) => match homeserver.admin_room_members(room).await {
            Ok(members) => Ok(members.into_iter().map(Recipient::unnamed).collect()),
            Err(error) if error.is_not_server_admin() => {
                Err(AudienceError::new("audience-not-in-room", &[("room", shown)]))
            }
            Err(error) => Err(cannot_read_members(shown, error)),
        },
        Err(error) => Err(cannot_read_members(shown, error)),
    }
}

fn cannot_read_members(shown: &str, error: MatrixError) -> AudienceError {
    AudienceError::new("audience-cannot-read-members", &[("room", shown), ("error", &error_text(&error))])
}

/// The local accounts of the homeserver, a page of the Synapse admin user list at a time.
pub struct AccountPages<'a> {
    homeserver: &'a dyn Homeserver,
    newest_first: bool,
    /// Only accounts whose user ID or display name contains this.
    pub search: Option<&'a str>,
    /// The offset of the next page; `None` once the last page was read.
    from: Option<u64>,
}

impl<'a> AccountPages<'a> {
    /// By name, or newest first (for the new-user poll).
    pub fn new(homeserver: &'a dyn Homeserver, newest_first: bool) -> Self {
        Self { homeserver, newest_first, search: None, from: Some(0) }
    }

    /// The next page, `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<AdminUser>>, MatrixError> {
        let Some(from) = self.from else { return Ok(None) };
        let (page, next) =
            self.homeserver.admin_users_page(from, BATCH as u32, self.newest_first, self.search).await?;
        self.from = next.filter(|next| *next > from);
        Ok(Some(page))
    }
}

/// The answer when the user list cannot be read.
pub fn cannot_list_users(homeserver: &dyn Homeserver, error: MatrixError) -> AudienceError {
    if error.is_not_server_admin() {
        not_server_admin(homeserver)
    } else {
        AudienceError::new("audience-cannot-list-users", &[("error", &error_text(&error))])
    }
}

/// What the homeserver admin must do so that the bot may list every user.
pub fn not_server_admin(homeserver: &dyn Homeserver) -> AudienceError {
    let address = homeserver.address().trim_end_matches('/').to_owned();
    AudienceError::new(
        "audience-not-server-admin",
        &[("address", &address), ("bot", homeserver.bot().as_str())],
    )
}

#[cfg(test)]
mod tests;
