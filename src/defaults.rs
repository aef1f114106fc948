//! Default broadcasts (welcome messages): everyone who joins a room or space with a default, or
//! registers on the homeserver for a `server` default, gets it once.
//!
//! A default is an ordinary broadcast that keeps taking recipients: a newcomer is queued into
//! the same broadcast, so the queue's unique (broadcast, user) pair makes it once per person,
//! ever — leaving and rejoining, two spaces with the same default, restarts. Joins arrive as
//! member events; nothing is missed while the bot is down because at start-up every default
//! room's members are queued again (those who had it are skipped by the unique pair) and the
//! new-user poll continues from its stored high-water mark.

use std::{sync::Arc, time::Duration};

use ruma::{OwnedUserId, RoomId, UserId};
use tokio::sync::watch;

use crate::{
    audience::{self, AudienceError, Exclusions, Target},
    commands::send::SendOptions,
    store::{now_ms, BroadcastId, BroadcastState, StoreError, SERVER_SCOPE},
    App,
};

/// The `bot_state` key of the new-user poll's high-water mark (account creation, ms).
const NEW_USERS_SINCE: &str = "new_users_since";

/// Records broadcast `id` as a default for the rooms (and their hierarchy, with `recursive`) and
/// the `server` among `targets`.
pub async fn record(
    app: &App,
    id: BroadcastId,
    targets: &[Target],
    recursive: bool,
) -> Result<(), AudienceError> {
    let mut scopes = 0;
    for target in targets {
        match target {
            Target::User(_) => {}
            Target::Room(room) => {
                let room_id = audience::room_id(app, room).await?;
                app.store.add_default(id, room_id.as_str()).await?;
                scopes += 1;
                if recursive {
                    for child in app.homeserver.space_rooms(&room_id).await.map_err(|error| {
                        AudienceError(format!("Cannot read the rooms of the space `{room}`: {error}"))
                    })? {
                        app.store.add_default(id, child.as_str()).await?;
                    }
                }
            }
            Target::Server => {
                app.store.add_default(id, SERVER_SCOPE).await?;
                let since = app.store.state_value(NEW_USERS_SINCE).await?.unwrap_or(0).max(now_ms());
                app.store.set_state_value(NEW_USERS_SINCE, since).await?;
                scopes += 1;
            }
        }
    }
    if scopes == 0 {
        return Err(AudienceError("`--default` needs a room, a space or `server` in the audience.".into()));
    }
    Ok(())
}

/// Queues `users` into default broadcast `id` (those who had it already are skipped) and wakes
/// the workers. Returns how many were new.
pub async fn welcome(app: &App, id: BroadcastId, users: &[OwnedUserId]) -> Result<u64, StoreError> {
    let broadcast = app.store.broadcast(id).await?;
    if !matches!(broadcast.state, BroadcastState::Running | BroadcastState::Done) {
        return Ok(0);
    }
    let options: SendOptions = serde_json::from_str(&broadcast.options_json).unwrap_or_default();
    let exclusions = Exclusions::new(app, &options.audience.except);
    let users: Vec<OwnedUserId> = users.iter().filter(|user| !exclusions.excludes(user)).cloned().collect();
    let added = app.store.add_deliveries(id, &users).await?;
    if added > 0 {
        app.store.skip_opted_out(id).await?;
        app.store.transition(id, BroadcastState::Done, BroadcastState::Running).await?;
        app.deliveries_ready.notify_waiters();
        tracing::info!(broadcast = %id, added, "welcome queued");
    }
    Ok(added)
}

/// `user` joined `room`: every active default of the room is queued for them.
pub async fn on_join(app: &App, room: &RoomId, user: &UserId) {
    let result = async {
        for id in app.store.defaults_for(room.as_str()).await? {
            welcome(app, id, &[user.to_owned()]).await?;
        }
        Ok::<_, StoreError>(())
    };
    if let Err(error) = result.await {
        tracing::error!(%error, %room, %user, "cannot queue a welcome");
    }
}

/// At start-up: queues whoever joined a default room while the bot was down.
pub async fn catch_up(app: &App) -> Result<(), StoreError> {
    for (id, room) in app.store.default_rooms().await? {
        let members = match app.homeserver.joined_members(&room).await {
            Ok(members) => members.into_iter().map(|(user, _)| user).collect(),
            Err(_) => match app.homeserver.admin_room_members(&room).await {
                Ok(members) => members,
                Err(error) => {
                    tracing::warn!(%error, %room, "cannot read the members of a room with a default");
                    continue;
                }
            },
        };
        welcome(app, id, &members).await?;
    }
    Ok(())
}

/// Looks for new accounts every `broadcast.new_user_poll_seconds` (and once at start) and
/// queues them into the active `server` defaults, until `stopped`.
pub async fn run_new_user_poll(app: Arc<App>, mut stopped: watch::Receiver<bool>) {
    let interval = Duration::from_secs(app.config.broadcast.new_user_poll_seconds);
    loop {
        if let Err(error) = poll_new_users(&app).await {
            tracing::warn!(%error, "cannot look for new accounts");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

async fn poll_new_users(app: &App) -> Result<(), String> {
    let defaults = app.store.defaults_for(SERVER_SCOPE).await.map_err(|error| error.to_string())?;
    if defaults.is_empty() {
        return Ok(());
    }
    let since = app.store.state_value(NEW_USERS_SINCE).await.map_err(|error| error.to_string())?.unwrap_or(0);
    let exclusions = Exclusions::new(app, &[]);
    let (mut newest, mut newcomers, mut from) = (since, Vec::new(), 0);
    'pages: loop {
        let (page, next) = app.homeserver.admin_users_page(from, 100, true).await.map_err(|error| {
            if error.is_not_server_admin() {
                audience::not_server_admin(app)
            } else {
                error.to_string()
            }
        })?;
        for account in page {
            let created = account.creation_ts.unwrap_or(0);
            if created <= since {
                break 'pages;
            }
            newest = newest.max(created);
            if exclusions.addresses_account(app, &account).await {
                newcomers.push(account.name);
            }
        }
        match next {
            Some(next) if next > from => from = next,
            _ => break,
        }
    }
    for id in defaults {
        welcome(app, id, &newcomers).await.map_err(|error| error.to_string())?;
    }
    if newest > since {
        app.store.set_state_value(NEW_USERS_SINCE, newest).await.map_err(|error| error.to_string())?;
    }
    Ok(())
}
