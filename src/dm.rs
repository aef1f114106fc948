//! One private DM room per recipient, created once and reused.
//!
//! A DM is a room the bot created with preset `private_chat`, `is_direct` and only the recipient
//! invited. Room creation is not idempotent on the homeserver, so the intent is recorded first
//! (with a nonce that goes into the room's create event); a `creating` record left by a crash is
//! reconciled by finding the room with that nonce among the bot's rooms before anything is
//! created again. A room that gained a third member is retired and a new one made; a recipient
//! who left is invited again; a pending invite is left as it is.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex as SyncMutex},
    time::Duration,
};

use ruma::{events::StateEventType, OwnedRoomId, OwnedUserId, RoomId, UserId};
use tokio::sync::Mutex;

use crate::{
    matrix::{membership, MatrixError, DM_NONCE_KEY},
    registration::random_token,
    store::{now_ms, DmRoom},
    App,
};

/// How old a `creating` record must be before another process may reconcile it (the creator
/// might still be at work).
const CREATING_GRACE_MS: i64 = 120_000;

/// Serialises DM work per recipient within this process.
#[derive(Default)]
pub struct DmLocks {
    locks: SyncMutex<HashMap<OwnedUserId, Arc<Mutex<()>>>>,
}

impl DmLocks {
    fn lock_for(&self, user: &UserId) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if locks.len() > 10_000 {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(user.to_owned()).or_default().clone()
    }
}

/// Why a DM could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DmError {
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The DM room of `user`, ready for a message: created, adopted or re-invited as needed.
pub async fn ensure_dm(app: &App, user: &UserId) -> Result<OwnedRoomId, DmError> {
    let lock = app.dm_locks.lock_for(user);
    let _held = lock.lock().await;
    loop {
        let Some(dm) = app.store.live_dm(user).await? else {
            // Synapse creates a room and accepts messages for an invite to an unknown user.
            if !app.homeserver.user_exists(user).await? {
                return Err(MatrixError::Permanent {
                    errcode: Some("M_NOT_FOUND".into()),
                    status: Some(404),
                    message: "this user does not exist".into(),
                }
                .into());
            }
            let nonce = random_token();
            if app.store.begin_dm(user, &nonce).await? {
                return create(app, user, &nonce).await;
            }
            continue; // another process recorded one first
        };
        match dm.room_id {
            Some(room) if dm.state == "ready" => {
                if usable(app, &room, user).await? {
                    return Ok(room);
                }
                app.store.retire_dm(&room).await?;
                app.direct_changed();
            }
            _ => return finish_creating(app, user, &dm).await,
        }
    }
}

/// Creates the room for a recorded intent.
async fn create(app: &App, user: &UserId, nonce: &str) -> Result<OwnedRoomId, DmError> {
    let room = match app.homeserver.create_dm(user, nonce).await {
        Ok(room) => room,
        Err(error @ MatrixError::Permanent { .. }) => {
            // Refused: no room was made, so there is nothing to reconcile later.
            app.store.abandon_dm(nonce).await?;
            return Err(error.into());
        }
        // Unknown outcome (the room may exist): the record stays for reconciliation.
        Err(error) => return Err(error.into()),
    };
    app.store.dm_created(nonce, &room).await?;
    app.direct_changed();
    tracing::debug!(%user, %room, "DM created");
    Ok(room)
}

/// A `creating` record: the room may exist (the creator crashed after creating it) or not.
async fn finish_creating(app: &App, user: &UserId, dm: &DmRoom) -> Result<OwnedRoomId, DmError> {
    if now_ms() - dm.created_at < CREATING_GRACE_MS && !app.owns_all_claims() {
        return Err(MatrixError::Transient {
            retry_after: Some(Duration::from_secs(5)),
            message: "the DM is being created by another process".into(),
        }
        .into());
    }
    if let Some(room) = find_room_with_nonce(app, &dm.nonce).await? {
        tracing::info!(%user, %room, "adopted a DM created before a crash");
        app.store.dm_created(&dm.nonce, &room).await?;
        app.direct_changed();
        return Ok(room);
    }
    create(app, user, &dm.nonce).await
}

/// Among the bot's rooms that are not recorded yet, the one created with `nonce`.
async fn find_room_with_nonce(app: &App, nonce: &str) -> Result<Option<OwnedRoomId>, DmError> {
    for room in app.homeserver.joined_rooms().await? {
        if app.store.dm_by_room(&room).await?.is_some() || app.store.is_control_room(&room).await? {
            continue;
        }
        let create = app.homeserver.state(&room, StateEventType::RoomCreate, "").await?;
        if create.as_ref().and_then(|content| content.get(DM_NONCE_KEY)).and_then(|n| n.as_str())
            == Some(nonce)
        {
            return Ok(Some(room));
        }
    }
    Ok(None)
}

/// Whether a stored DM can take a message: only the bot and `user` in it (else false: retire),
/// and `user` joined or invited (invited again when they left).
async fn usable(app: &App, room: &RoomId, user: &UserId) -> Result<bool, DmError> {
    let members = app.homeserver.joined_members(room).await?;
    if members.iter().any(|(member, _)| member != user && *member != app.bot) {
        tracing::info!(%room, %user, "DM has a third member; retiring it");
        return Ok(false);
    }
    if members.iter().any(|(member, _)| member == user) {
        return Ok(true);
    }
    match membership(app.homeserver.as_ref(), room, user).await?.as_deref() {
        Some("invite") => Ok(true),
        Some("ban") => Err(MatrixError::Permanent {
            errcode: Some("M_FORBIDDEN".into()),
            status: None,
            message: "the recipient is banned from their DM with the bot".into(),
        }
        .into()),
        _ => {
            // They left (or rejected the invite): invite them again.
            app.homeserver.invite(room, user).await?;
            Ok(true)
        }
    }
}

/// A person invited the bot to a direct chat. When the bot has no DM with them it joins and uses
/// that room as their DM; an encrypted one it cannot read, so it says so and keeps its own.
pub async fn adopt_invited(app: &App, room: &RoomId, user: &UserId, invite: &ruma::EventId) {
    let txn = |kind: &str| format!("{kind}.{}", invite.as_str().trim_start_matches('$'));
    match app.store.live_dm(user).await {
        Ok(None) => {}
        Ok(Some(_)) => {
            let reason = "I already have a direct chat with you; please write there.".to_owned();
            if let Err(error) = app.homeserver.leave(room, Some(reason)).await {
                tracing::warn!(%error, "cannot decline a second direct chat");
            }
            return;
        }
        Err(error) => return tracing::error!(%error, "cannot look up DMs"),
    }
    if let Err(error) = app.homeserver.join(&ruma::OwnedRoomOrAliasId::from(room.to_owned())).await {
        return tracing::warn!(%error, %user, "cannot join a direct chat");
    }
    match app.homeserver.room_facts(room).await {
        Ok(facts) if facts.is_encrypted => {
            let text =
                "This chat is encrypted and I cannot read encrypted messages (yet), so I will not see what \
                        you write here. I will write to you in a chat of my own, where you can answer.";
            crate::dispatch::post_notice(app, room, &txn("encrypted-dm"), text).await;
            return;
        }
        Ok(_) => {}
        Err(error) => return tracing::warn!(%error, "cannot tell whether a direct chat is encrypted"),
    }
    let nonce = random_token();
    let adopted = async {
        if app.store.begin_dm(user, &nonce).await? {
            app.store.dm_created(&nonce, room).await?;
        }
        Ok::<_, crate::store::StoreError>(())
    };
    match adopted.await {
        Ok(()) => {
            tracing::info!(%user, %room, "adopted a direct chat the recipient opened");
            app.direct_changed();
        }
        Err(error) => tracing::error!(%error, "cannot record an adopted direct chat"),
    }
}

/// Writes the bot's `m.direct` account data from the store: every ready DM. The whole object is
/// rewritten each time, so calls are coalesced by [`run_direct_writer`].
async fn write_direct(app: &App) -> Result<(), DmError> {
    let mut direct: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for (user, room) in app.store.ready_dms().await? {
        if let Some(rooms) =
            direct.entry(user.to_string()).or_insert_with(|| serde_json::json!([])).as_array_mut()
        {
            rooms.push(serde_json::Value::String(room.to_string()));
        }
    }
    app.homeserver.set_direct(serde_json::Value::Object(direct)).await?;
    Ok(())
}

/// Rewrites `m.direct` at most every two seconds while DMs change, until `stopped`.
pub async fn run_direct_writer(app: Arc<App>, mut stopped: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = app.direct_dirty.notified() => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stopped.wait_for(|stop| *stop) => {}
        }
        if let Err(error) = write_direct(&app).await {
            tracing::warn!(%error, "cannot update the bot's m.direct; will retry with the next change");
            app.direct_changed();
        }
        if *stopped.borrow() {
            return;
        }
    }
}
