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

use ruma::{RoomId, UserId};
use tokio::sync::watch;

use crate::{
    base::store::{BroadcastId, BroadcastState, DefaultScope, Recipient, StoreError},
    broadcasts::audience::{self, AccountPages, AudienceError, Exclusions},
    broadcasts::Broadcasts,
    rooms::handled::Handled,
};

/// Queues `users` into default broadcast `id` (those who had it already are skipped) and wakes
/// the workers. Returns how many were new.
pub async fn welcome(
    broadcasts: &Broadcasts,
    id: BroadcastId,
    users: &[Recipient],
) -> Result<u64, StoreError> {
    let broadcast = broadcasts.rooms.store.broadcast(id).await?;
    // Also while the default is still resolving or waiting for ✅: workers only claim deliveries
    // of running broadcasts, so these go out when it starts.
    let open =
        [BroadcastState::Resolving, BroadcastState::Prepared, BroadcastState::Running, BroadcastState::Done];
    if !open.contains(&broadcast.state) {
        return Ok(0);
    }
    let exclusions = Exclusions::new(
        &broadcasts.rooms.bot,
        &broadcasts.rooms.broadcast.exclude,
        &broadcast.options.audience.except,
    );
    let addressed = exclusions.addressable(&broadcasts.rooms.store, broadcasts.rooms.hs(), users).await?;
    let added = broadcasts.rooms.store.add_recipients(id, &addressed).await?;
    if added > 0 {
        broadcasts.rooms.store.skip_opted_out(id).await?;
        broadcasts.rooms.store.transition(id, BroadcastState::Done, BroadcastState::Running).await?;
        broadcasts.delivery.wake();
        tracing::info!(broadcast = %id, added, "welcome queued");
    }
    Ok(added)
}

/// `user` joined `room` (as `displayname`): every active default of the room is queued for them.
/// A welcome already queued for them is not queued again, so a failure is tried again.
pub async fn on_join(
    broadcasts: &Broadcasts,
    room: &RoomId,
    user: &UserId,
    displayname: Option<&str>,
) -> Handled {
    let result = async {
        let newcomer = Recipient::new(user.to_owned(), displayname.map(str::to_owned));
        for id in broadcasts.rooms.store.defaults_for(&DefaultScope::Room(room.to_owned())).await? {
            welcome(broadcasts, id, std::slice::from_ref(&newcomer)).await?;
        }
        Ok::<_, StoreError>(())
    };
    Handled::of("cannot queue a welcome", result.await)
}

/// At start-up: queues whoever joined a default room while the bot was down.
pub async fn catch_up(broadcasts: &Broadcasts) -> Result<(), StoreError> {
    for (id, room) in broadcasts.rooms.store.default_rooms().await? {
        match audience::room_members(broadcasts.rooms.hs(), &room, room.as_str()).await {
            Ok(members) => {
                welcome(broadcasts, id, &members).await?;
            }
            Err(error) => tracing::warn!(%error, %room, "cannot read the members of a room with a default"),
        }
    }
    Ok(())
}

/// Looks for new accounts every `broadcast.new_user_poll_seconds` (and once at start) and
/// queues them into the active `server` defaults, until `stopped`.
pub async fn run_new_user_poll(broadcasts: Arc<Broadcasts>, mut stopped: watch::Receiver<bool>) {
    let interval = Duration::from_secs(broadcasts.rooms.broadcast.new_user_poll_seconds);
    loop {
        if let Err(error) = poll_new_users(&broadcasts).await {
            tracing::warn!(%error, "cannot look for new accounts");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

async fn poll_new_users(broadcasts: &Broadcasts) -> Result<(), AudienceError> {
    let defaults = broadcasts.rooms.store.defaults_for(&DefaultScope::Server).await?;
    if defaults.is_empty() {
        return Ok(());
    }
    let since = broadcasts.rooms.store.new_user_mark().await?;
    let exclusions = Exclusions::new(&broadcasts.rooms.bot, &broadcasts.rooms.broadcast.exclude, &[]);
    let (mut newest, mut newcomers) = (since, Vec::new());
    let mut pages = AccountPages::new(broadcasts.rooms.hs(), true);
    'pages: while let Some(page) =
        pages.next().await.map_err(|error| audience::cannot_list_users(broadcasts.rooms.hs(), error))?
    {
        for account in page {
            let created = account.creation_ts.unwrap_or(0);
            // Newest first: older accounts were seen by an earlier poll. One made in the same
            // millisecond as the mark may be new; the queue's unique pair drops it if not.
            if created < since {
                break 'pages;
            }
            newest = newest.max(created);
            if exclusions.addresses_account(broadcasts.rooms.hs(), &account).await {
                newcomers.push(Recipient::new(account.name, account.displayname));
            }
        }
    }
    for id in defaults {
        welcome(broadcasts, id, &newcomers).await?;
    }
    if newest > since {
        broadcasts.rooms.store.set_new_user_mark(newest).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ruma::{events::room::member::MembershipState, OwnedUserId};

    use super::*;
    use crate::{
        base::store::{AudienceOptions, SendOptions},
        broadcasts::testing::TestBroadcasts,
        rooms::testing::HR_PERSONA,
    };

    /// A finished default broadcast for `scope`, with `except` left out.
    async fn default_for(
        test: &TestBroadcasts,
        scope: DefaultScope,
        except: Vec<OwnedUserId>,
    ) -> BroadcastId {
        default_in(test, BroadcastState::Done, scope, except).await
    }

    /// A default broadcast for `scope` in `state`.
    async fn default_in(
        test: &TestBroadcasts,
        state: BroadcastState,
        scope: DefaultScope,
        except: Vec<OwnedUserId>,
    ) -> BroadcastId {
        let options = SendOptions {
            default: true,
            audience: AudienceOptions { except, recursive: false },
            ..Default::default()
        };
        let id = test.broadcast_in(state, &test.control_room().await, "Welcome", &[], &[], options).await;
        test.store().add_default(id, &scope).await.unwrap();
        id
    }

    async fn queued(test: &TestBroadcasts, id: BroadcastId) -> Vec<OwnedUserId> {
        test.store().sample_recipients(id, 100).await.unwrap()
    }

    #[tokio::test]
    async fn a_newcomer_is_welcomed_once_even_after_leaving_and_rejoining() {
        let test = TestBroadcasts::new().await;
        let owner = test.hs.user("owner", None);
        let space = test.hs.room(&owner, &[], true);
        let carol = test.hs.user("carol", None);
        let id = default_for(&test, DefaultScope::Room(space.clone()), vec![]).await;
        on_join(&test.broadcasts, &space, &carol, None).await;
        assert_eq!(queued(&test, id).await, std::slice::from_ref(&carol));
        assert_eq!(test.store().broadcast(id).await.unwrap().state, BroadcastState::Running, "reopened");
        on_join(&test.broadcasts, &space, &carol, None).await;
        assert_eq!(test.store().delivery_counts(id).await.unwrap().total(), 1, "once per person, ever");

        let other = test.hs.room(&owner, &[], true);
        on_join(&test.broadcasts, &other, &owner, None).await;
        assert_eq!(test.store().delivery_counts(id).await.unwrap().total(), 1, "only the default's rooms");
        test.store().set_default_active(id, false).await.unwrap();
        on_join(&test.broadcasts, &space, &owner, None).await;
        assert_eq!(
            test.store().delivery_counts(id).await.unwrap().total(),
            1,
            "a default switched off welcomes nobody"
        );
    }

    #[tokio::test]
    async fn welcomes_leave_out_the_excluded_and_catch_up_after_a_stop() {
        let test = TestBroadcasts::new().await;
        let owner = test.hs.user("owner", None);
        let dave = test.hs.user("dave", None);
        let helper = test.hs.user("helper_bot", None);
        let space = test.hs.room(&owner, &[], true);
        let id = default_for(&test, DefaultScope::Room(space.clone()), vec![dave.clone()]).await;
        // They joined while the bot was stopped.
        for user in [&dave, &helper] {
            test.hs.set_membership(&space, user, MembershipState::Join);
        }
        catch_up(&test.broadcasts).await.unwrap();
        assert_eq!(queued(&test, id).await, [owner], "not --except, not a bot, not the bot itself");
    }

    #[tokio::test]
    async fn new_accounts_get_the_server_default_and_older_ones_do_not() {
        let test = TestBroadcasts::new().await;
        test.hs.user("old", None);
        let id = default_for(&test, DefaultScope::Server, vec![]).await;
        let error = poll_new_users(&test.broadcasts).await.unwrap_err();
        assert!(error.to_string().contains("I must be a Synapse server admin"), "{error}");
        test.hs.with(|state| state.server_admin = true);
        // The default was made after the accounts so far (the fake counts creation from 1).
        let newest = test.hs.with(|state| state.accounts.iter().filter_map(|a| a.creation_ts).max().unwrap());
        test.store().set_new_user_mark(newest + 1).await.unwrap();
        let erin = test.hs.user("erin", None);
        let frank = test.hs.user("frank", None);
        poll_new_users(&test.broadcasts).await.unwrap();
        assert_eq!(queued(&test, id).await, [erin, frank]);
        assert!(test.store().new_user_mark().await.unwrap() > newest, "the mark moves on");
        poll_new_users(&test.broadcasts).await.unwrap();
        assert_eq!(test.store().delivery_counts(id).await.unwrap().total(), 2, "nobody twice");
    }

    /// Issue 10, item 9: an account made in the same millisecond as the newest one seen, after
    /// that poll, is still welcomed.
    #[tokio::test]
    async fn an_account_made_in_the_same_millisecond_as_the_mark_is_welcomed() {
        let test = TestBroadcasts::new().await;
        test.hs.with(|state| state.server_admin = true);
        let id = default_for(&test, DefaultScope::Server, vec![]).await;
        test.store().set_new_user_mark(0).await.unwrap();
        poll_new_users(&test.broadcasts).await.unwrap();
        let mark = test.store().new_user_mark().await.unwrap();
        let gina = test.hs.user("gina", None);
        test.hs.with(|state| {
            state.accounts.iter_mut().find(|a| a.name == gina).unwrap().creation_ts = Some(mark)
        });
        poll_new_users(&test.broadcasts).await.unwrap();
        assert!(queued(&test, id).await.contains(&gina), "an account at the mark is not skipped");
    }

    /// Synapse keeps an account's creation time in whole seconds: an account registered in the
    /// second the `server` default was made, after it, is welcomed (this failed about one run in
    /// three of `defaults::a_new_account_gets_the_server_default`).
    #[tokio::test]
    async fn an_account_made_in_the_second_the_default_was_made_is_welcomed() {
        let test = TestBroadcasts::new().await;
        test.hs.with(|state| state.server_admin = true);
        let id = default_for(&test, DefaultScope::Server, vec![]).await;
        test.store().start_new_user_mark().await.unwrap();
        let made_now = crate::base::store::now_ms() / 1000 * 1000; // as Synapse reports it
        let gina = test.hs.user("gina", None);
        test.hs.with(|state| {
            state.accounts.iter_mut().find(|a| a.name == gina).unwrap().creation_ts = Some(made_now)
        });
        poll_new_users(&test.broadcasts).await.unwrap();
        assert!(queued(&test, id).await.contains(&gina));
    }

    /// Issue 10, item 8: people who join while a default waits for confirmation (or is still
    /// resolving) are queued, and get it once it starts.
    #[tokio::test]
    async fn joins_before_a_default_starts_are_queued_not_dropped() {
        let test = TestBroadcasts::new().await;
        let owner = test.hs.user("owner", None);
        let space = test.hs.room(&owner, &[], true);
        let carol = test.hs.user("carol", None);
        // Waiting for ✅, as a large default's preview does.
        let id = default_in(&test, BroadcastState::Prepared, DefaultScope::Room(space.clone()), vec![]).await;
        on_join(&test.broadcasts, &space, &carol, None).await;
        assert_eq!(queued(&test, id).await, [carol], "queued while prepared");
        assert_eq!(
            test.store().broadcast(id).await.unwrap().state,
            BroadcastState::Prepared,
            "not started by a join"
        );
        assert_eq!(test.store().claim_delivery(60_000).await.unwrap(), None, "workers wait for the start");
    }

    /// Issue 10, item 7: a welcome queued while progress is finishing the broadcast is not
    /// stranded in a done broadcast.
    #[tokio::test]
    async fn a_welcome_racing_the_finish_is_not_stranded() {
        let test = TestBroadcasts::new().await;
        let owner = test.hs.user("owner", None);
        let space = test.hs.room(&owner, &[], true);
        let id = default_in(&test, BroadcastState::Running, DefaultScope::Room(space.clone()), vec![]).await;
        // Progress counted nothing unfinished; then the welcome came; then progress finishes.
        let stale = test.store().delivery_counts(id).await.unwrap();
        on_join(&test.broadcasts, &space, &owner, None).await;
        crate::broadcasts::lifecycle::progress::finish(
            crate::base::i18n::Language::En,
            test.store(),
            test.hs.as_ref(),
            &test.store().broadcast(id).await.unwrap(),
            &stale,
        )
        .await
        .unwrap();
        assert_eq!(test.store().broadcast(id).await.unwrap().state, BroadcastState::Running, "still running");
        assert!(test.store().claim_delivery(60_000).await.unwrap().is_some(), "the welcome can be claimed");
    }

    /// A default sent `--as` a persona welcomes newcomers as that persona.
    #[tokio::test]
    async fn a_persona_default_welcomes_newcomers_as_the_persona() {
        let test = TestBroadcasts::with_config(HR_PERSONA).await;
        let control = test.control_room().await;
        let owner = test.hs.user("owner", None);
        let space = test.hs.room(&owner, &[], true);
        let options = SendOptions { default: true, persona: Some("hr".into()), ..SendOptions::default() };
        let id = test.running_broadcast(&control, "Welcome", &[], options).await;
        test.store().add_default(id, &DefaultScope::Room(space.clone())).await.unwrap();
        let carol = test.hs.user("carol", None);
        on_join(&test.broadcasts, &space, &carol, None).await;
        test.deliver_all(id, 1).await;
        let hr: OwnedUserId = "@broadcast_hr:example.org".try_into().unwrap();
        let hr_room = test.hs.dms_between(&hr, &carol).pop().expect("a DM with the persona");
        let by_hr: Vec<_> = test.hs.sent_to(&hr_room).into_iter().filter(|sent| sent.sender == hr).collect();
        assert_eq!(by_hr[0].content["body"], "Welcome");
        assert!(test.hs.dms_with(&carol).is_empty(), "none with the bot");
    }
}
