//! The store on a SQLite file and on PostgreSQL: migrations, and each table doing its job.
//!
//! PostgreSQL tests use the database named by `MATRIX_BROADCAST_TEST_POSTGRES`, which
//! `scripts/test` creates and drops; without it they fail and say so.

use matrix_broadcast::base::{
    message::StoredMessage,
    store::{
        Arrival, BroadcastId, BroadcastState, DefaultScope, DeliveryCounts, DeliveryState, DmState, Lane,
        NewBroadcast, ReplyThread, SendOptions, Store, StoreError,
    },
};
use ruma::{owned_event_id, owned_room_id, owned_user_id, EventId, OwnedUserId, RoomId, UserId};
use sqlx::Connection;

/// A fresh PostgreSQL schema per test, so that tests do not see each other's rows.
async fn postgres_store() -> Store {
    postgres_store_with_uri().await.0
}

/// [`postgres_store`] and the URI that opens its schema.
async fn postgres_store_with_uri() -> (Store, String) {
    let uri = crate::harness::postgres_schema_uri();
    (Store::connect(&uri, 4).await.expect("open postgres store"), uri)
}

async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
    let uri = format!("sqlite://{}", dir.path().join("bot.db").display());
    Store::connect(&uri, 4).await.expect("open sqlite store")
}

/// A broadcast named "Welcome", still resolving, made by `command` (if any).
fn new_broadcast<'a>(room: &'a RoomId, admin: &'a UserId, command: Option<&'a EventId>) -> NewBroadcast<'a> {
    NewBroadcast {
        name: "Welcome",
        control_room_id: room,
        created_by: admin,
        message: Box::leak(Box::new(StoredMessage::markdown("Welcome, **{displayname}**"))),
        state: BroadcastState::Resolving,
        audience: Box::leak(Box::new(["#all:example.org".to_owned()])),
        options: Box::leak(Box::new(SendOptions { yes: true, ..SendOptions::default() })),
        command_event_id: command,
    }
}

async fn inbox_keeps_each_event_once(store: &Store) {
    let arrival =
        |key: &str, n: u32, lane| Arrival { key: key.into(), json: format!(r#"{{"n":{n}}}"#), lane };
    let a = arrival("$a", 1, Lane::People);
    let b = arrival("receipt|!dm|@a:x.org|$e", 2, Lane::Bulk);
    assert_eq!(store.push_inbox(&[a.clone(), b.clone()]).await.unwrap(), 2);
    assert_eq!(store.push_inbox(std::slice::from_ref(&b)).await.unwrap(), 0, "a re-pushed event is ignored");
    // Issue 25, item 4: what people wait for is read before the bulk that came earlier.
    store.push_inbox(&[arrival("$c", 3, Lane::People)]).await.unwrap();
    let batch = store.inbox_batch(10).await.unwrap();
    assert_eq!(
        batch.iter().map(|event| event.event_json.as_str()).collect::<Vec<_>>(),
        [r#"{"n":1}"#, r#"{"n":3}"#, r#"{"n":2}"#]
    );
    store.inbox_handled(&batch[..2]).await.unwrap();
    assert_eq!(store.inbox_batch(10).await.unwrap().len(), 1);
    // Issue 22, item 13: an event handled already and pushed again is not taken in again.
    assert_eq!(store.push_inbox(std::slice::from_ref(&a)).await.unwrap(), 0, "a handled event is ignored");
    // Issue 22, item 7: an event put off for a later try is not read before then.
    let later = matrix_broadcast::base::store::now_ms() + 60_000;
    store.inbox_later(&batch[2], 1, later).await.unwrap();
    assert!(store.inbox_batch(10).await.unwrap().is_empty(), "b waits for its next try");
    assert_eq!(store.inbox_next_due().await.unwrap(), Some(later));
    store.inbox_later(&batch[2], 2, 0).await.unwrap();
    assert_eq!(store.inbox_batch(10).await.unwrap()[0].tries, 2);
    // A week later the key is forgotten.
    assert_eq!(store.prune_handled(matrix_broadcast::base::store::now_ms() + 1).await.unwrap(), 2);
    assert_eq!(store.push_inbox(std::slice::from_ref(&a)).await.unwrap(), 1);
}

async fn control_rooms_are_remembered_and_forgotten(store: &Store) {
    let room = owned_room_id!("!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM");
    let admin = owned_user_id!("@admin:example.org");
    assert!(!store.is_control_room(&room).await.unwrap());
    store.add_control_room(&room, &admin).await.unwrap();
    store.add_control_room(&room, &admin).await.unwrap();
    assert!(store.is_control_room(&room).await.unwrap());
    assert_eq!(store.control_rooms().await.unwrap(), std::slice::from_ref(&room));
    store.remove_control_room(&room).await.unwrap();
    assert!(store.control_rooms().await.unwrap().is_empty());
}

async fn broadcasts_and_their_deliveries(store: &Store) {
    let room = owned_room_id!("!control:example.org");
    let admin = owned_user_id!("@admin:example.org");
    let command = owned_event_id!("$command");
    let new = |command| new_broadcast(&room, &admin, command);
    let first = store.create_broadcast(new(Some(&command))).await.unwrap();
    assert!(store.create_broadcast(new(Some(&command))).await.is_err(), "one broadcast per command event");
    let second = store.create_broadcast(new(None)).await.unwrap();
    assert!(second.0 > first.0, "ids grow");
    let stored = store.broadcast(first).await.unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.state, stored.control_room_id),
        ("Welcome", BroadcastState::Resolving, room.clone())
    );
    assert_eq!(stored.message, StoredMessage::markdown("Welcome, **{displayname}**"), "the message is typed");
    assert_eq!((stored.audience, stored.options.yes), (vec!["#all:example.org".to_owned()], true));
    assert_eq!(store.broadcast_by_command(&command).await.unwrap().map(|b| b.id), Some(first));
    assert!(matches!(store.broadcast(BroadcastId(999_999)).await, Err(StoreError::NotFound)));

    let users: Vec<OwnedUserId> =
        (0..5).map(|n| format!("@user{n}:example.org").try_into().unwrap()).collect();
    assert_eq!(store.add_deliveries(first, &users).await.unwrap(), 5);
    assert_eq!(store.add_deliveries(first, &users[..2]).await.unwrap(), 0, "(broadcast, user) is unique");
    assert_eq!(store.add_deliveries(second, &users[..2]).await.unwrap(), 2);
    assert_eq!(
        store.delivery_counts(first).await.unwrap(),
        DeliveryCounts { pending: 5, ..Default::default() }
    );

    // Nothing is claimed before the broadcast runs.
    assert_eq!(store.claim_delivery(60_000).await.unwrap(), None);
    assert!(store.transition(first, BroadcastState::Resolving, BroadcastState::Running).await.unwrap());
    assert!(
        !store.transition(first, BroadcastState::Resolving, BroadcastState::Running).await.unwrap(),
        "moves once"
    );
    assert!(store.broadcast(first).await.unwrap().started_at.is_some());

    let mut claims = Vec::new();
    while let Some(claim) = store.claim_delivery(60_000).await.unwrap() {
        assert_eq!((claim.broadcast_id, claim.attempts), (first, 1));
        claims.push(claim);
    }
    assert_eq!(claims.len(), 5, "each delivery is claimed once while its lease runs");
    store.mark_delivered(&claims[0], &owned_room_id!("!dm0"), &owned_event_id!("$sent0")).await.unwrap();
    store.end_delivery(&claims[1], DeliveryState::Failed, "this user does not exist").await.unwrap();
    store.retry_delivery(&claims[2], matrix_broadcast::base::store::now_ms() - 1, "busy").await.unwrap();
    let again = store.claim_delivery(60_000).await.unwrap().expect("a retried delivery is due again");
    assert_eq!((again.user_id.clone(), again.attempts), (claims[2].user_id.clone(), 2));
    // A worker that died: its claims come back when released (SQLite start-up) or expired.
    assert_eq!(store.release_claims().await.unwrap(), 3);
    assert!(store.claim_delivery(60_000).await.unwrap().is_some());

    let counts = store.delivery_counts(first).await.unwrap();
    assert_eq!((counts.delivered, counts.failed, counts.unfinished(), counts.total()), (1, 1, 3, 5));
    let failures = store.deliveries_with_reason(first, DeliveryState::Failed, 10).await.unwrap();
    assert_eq!(failures, [(claims[1].user_id.clone(), "this user does not exist".to_owned())]);
    assert_eq!(
        store.cancel_deliveries(first).await.unwrap(),
        3,
        "pending and in-flight deliveries are cancelled"
    );
    let counts = store.delivery_counts(first).await.unwrap();
    assert_eq!(
        (counts.delivered, counts.failed, counts.cancelled, counts.unfinished()),
        (1, 1, 3, 0),
        "the kept counts follow every change of state"
    );
    assert_eq!(
        store.sample_recipients(second, 5).await.unwrap(),
        users[..2],
        "the recipients still to be sent to"
    );
    store.delete_deliveries(second).await.unwrap();
    assert_eq!(store.delivery_counts(second).await.unwrap(), DeliveryCounts::default(), "and deletions");
    assert_eq!(store.delivery_counts(first).await.unwrap().total(), 5, "of that broadcast only");
}

async fn one_live_dm_room_per_user(store: &Store) {
    let user = owned_user_id!("@alice:example.org");
    assert_eq!(store.live_dm(None, &user).await.unwrap(), None);
    assert!(store.begin_dm(None, &user, "nonce-0").await.unwrap());
    store.abandon_dm("nonce-0").await.unwrap();
    assert_eq!(store.live_dm(None, &user).await.unwrap(), None, "a refused creation leaves nothing behind");
    assert!(store.begin_dm(None, &user, "nonce-1").await.unwrap());
    assert!(!store.begin_dm(None, &user, "nonce-2").await.unwrap(), "a second DM cannot be started");
    assert_eq!(store.live_dm(None, &user).await.unwrap().map(|dm| dm.state), Some(DmState::Creating));
    store.dm_created("nonce-1", &owned_room_id!("!first"), false).await.unwrap();
    assert_eq!(store.ready_dms(None).await.unwrap(), [(user.clone(), owned_room_id!("!first"))]);
    store.retire_dm(&owned_room_id!("!first")).await.unwrap();
    assert!(store.begin_dm(None, &user, "nonce-3").await.unwrap(), "after retiring, a new DM may be made");
    store.dm_created("nonce-3", &owned_room_id!("!second"), true).await.unwrap();
    assert_eq!(
        store.live_dm(None, &user).await.unwrap().and_then(|dm| dm.room_id),
        Some(owned_room_id!("!second"))
    );
    assert_eq!(
        store.dm_by_room(&owned_room_id!("!first")).await.unwrap().map(|dm| dm.state),
        Some(DmState::Retired)
    );
}

/// A recipient has a live DM with the bot and one with each persona; a claim carries the
/// persona of its broadcast and the recipient's DM with that sender.
async fn each_sender_has_its_own_dm_and_a_claim_finds_it(store: &Store) {
    let carol = owned_user_id!("@carol:example.org");
    let (bot_dm, hr_dm) = (owned_room_id!("!bot-dm"), owned_room_id!("!hr-dm"));
    assert!(store.begin_dm(None, &carol, "nonce-bot").await.unwrap());
    store.dm_created("nonce-bot", &bot_dm, false).await.unwrap();
    assert!(store.begin_dm(Some("hr"), &carol, "nonce-hr").await.unwrap(), "a DM of its own");
    assert!(!store.begin_dm(Some("hr"), &carol, "nonce-hr-2").await.unwrap(), "one live DM per sender");
    store.dm_created("nonce-hr", &hr_dm, false).await.unwrap();
    assert_eq!(store.ready_dms(Some("hr")).await.unwrap(), [(carol.clone(), hr_dm.clone())]);
    assert!(!store.ready_dms(None).await.unwrap().iter().any(|(_, room)| *room == hr_dm), "not the bot's");
    let stored = store.dm_by_room(&hr_dm).await.unwrap().unwrap();
    assert_eq!((stored.persona.as_deref(), stored.user_id), (Some("hr"), carol.clone()));

    let (room, admin) = (owned_room_id!("!control:example.org"), owned_user_id!("@admin:example.org"));
    for persona in [Some("hr"), None] {
        let options = SendOptions { persona: persona.map(str::to_owned), ..SendOptions::default() };
        let id =
            store.create_broadcast(NewBroadcast { options: &options, ..new_broadcast(&room, &admin, None) });
        let id = id.await.unwrap();
        store.add_deliveries(id, std::slice::from_ref(&carol)).await.unwrap();
        store.transition(id, BroadcastState::Resolving, BroadcastState::Running).await.unwrap();
        let claim = store.claim_delivery(60_000).await.unwrap().expect("carol's delivery");
        assert_eq!((claim.broadcast_id, claim.persona.as_deref()), (id, persona));
        let dm = claim.dm.as_ref().and_then(|dm| dm.room_id.clone());
        assert_eq!(dm, Some(if persona.is_some() { hr_dm.clone() } else { bot_dm.clone() }), "{persona:?}");
        store.mark_delivered(&claim, dm.as_ref().unwrap(), &owned_event_id!("$copy")).await.unwrap();
    }
}

async fn replies_reads_and_opt_outs(store: &Store) {
    let room = owned_room_id!("!control:example.org");
    let admin = owned_user_id!("@admin:example.org");
    let alice = owned_user_id!("@alice:example.org");
    let id = store.create_broadcast(new_broadcast(&room, &admin, None)).await.unwrap();
    store.add_deliveries(id, std::slice::from_ref(&alice)).await.unwrap();
    store.transition(id, BroadcastState::Resolving, BroadcastState::Running).await.unwrap();
    let claim = store.claim_delivery(60_000).await.unwrap().expect("alice's delivery");
    let dm = owned_room_id!("!dm-alice");
    store.mark_delivered(&claim, &dm, &owned_event_id!("$copy")).await.unwrap();
    assert_eq!(store.last_delivered_in(&dm).await.unwrap(), Some(id));

    store.mark_read(id, &alice).await.unwrap();
    assert_eq!(store.read_and_replied(id).await.unwrap(), (1, 0));
    store.mark_replied(id, &alice).await.unwrap();
    assert_eq!(store.read_and_replied(id).await.unwrap(), (1, 1));
    assert_eq!(store.repliers(id, 10).await.unwrap(), std::slice::from_ref(&alice));

    let thread = ReplyThread {
        broadcast_id: id,
        user_id: alice.clone(),
        control_room_id: room.clone(),
        root_event_id: owned_event_id!("$root"),
    };
    store.add_reply_thread(&thread).await.unwrap();
    assert_eq!(store.reply_thread(id, &alice).await.unwrap(), Some(thread.clone()));
    assert_eq!(store.thread_by_root(&owned_event_id!("$root")).await.unwrap(), Some(thread));
    let dm = owned_room_id!("!dm:example.org");
    store.record_relay(&dm, &owned_event_id!("$reply"), &room, &owned_event_id!("$relayed")).await.unwrap();
    assert_eq!(
        store.relayed(&dm, &owned_event_id!("$reply")).await.unwrap(),
        Some((room.clone(), owned_event_id!("$relayed")))
    );
    // Issue 22, item 12: the same event ID named from another room finds nothing.
    let other_dm = owned_room_id!("!other-dm:example.org");
    assert_eq!(store.relayed(&other_dm, &owned_event_id!("$reply")).await.unwrap(), None);

    store.opt_out(&alice).await.unwrap();
    assert!(store.is_opted_out(&alice).await.unwrap());
    let next = store.create_broadcast(new_broadcast(&room, &admin, None)).await.unwrap();
    store.add_deliveries(next, std::slice::from_ref(&alice)).await.unwrap();
    assert_eq!(store.skip_opted_out(next).await.unwrap(), 1);
    assert_eq!(store.delivery_counts(next).await.unwrap().skipped, 1);
    store.opt_in(&alice).await.unwrap();
    assert!(!store.is_opted_out(&alice).await.unwrap());
}

async fn defaults_and_the_new_user_mark(store: &Store) {
    let room = owned_room_id!("!control:example.org");
    let admin = owned_user_id!("@admin:example.org");
    let space = owned_room_id!("!space:example.org");
    let id = store.create_broadcast(new_broadcast(&room, &admin, None)).await.unwrap();
    store.add_default(id, &DefaultScope::Room(space.clone())).await.unwrap();
    store.add_default(id, &DefaultScope::Room(space.clone())).await.unwrap();
    store.add_default(id, &DefaultScope::Server).await.unwrap();
    assert_eq!(store.defaults_for(&DefaultScope::Room(space.clone())).await.unwrap(), [id]);
    assert_eq!(store.default_rooms().await.unwrap(), [(id, space.clone())], "server is no room");
    let scopes: Vec<DefaultScope> =
        store.all_defaults().await.unwrap().into_iter().map(|d| d.scope).collect();
    assert_eq!(scopes, [DefaultScope::Room(space.clone()), DefaultScope::Server]);
    assert!(store.set_default_active(id, false).await.unwrap());
    assert!(store.defaults_for(&DefaultScope::Server).await.unwrap().is_empty());
    assert!(!store.set_default_active(BroadcastId(999_999), false).await.unwrap(), "no such default");

    assert_eq!(store.new_user_mark().await.unwrap(), 0);
    store.set_new_user_mark(42).await.unwrap();
    assert_eq!(store.new_user_mark().await.unwrap(), 42);
    store.start_new_user_mark().await.unwrap();
    assert!(store.new_user_mark().await.unwrap() > 42, "a new server default starts at now");
}

async fn every_table(store: &Store) {
    inbox_keeps_each_event_once(store).await;
    control_rooms_are_remembered_and_forgotten(store).await;
    broadcasts_and_their_deliveries(store).await;
    one_live_dm_room_per_user(store).await;
    replies_reads_and_opt_outs(store).await;
    defaults_and_the_new_user_mark(store).await;
    each_sender_has_its_own_dm_and_a_claim_finds_it(store).await;
}

#[tokio::test]
async fn sqlite_store_works_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    every_table(&store).await;
    store.close().await;
    // Reopening runs no migration twice and keeps the rows.
    let store = sqlite_store(&dir).await;
    assert!(store.live_dm(None, &owned_user_id!("@alice:example.org")).await.unwrap().is_some());
}

#[tokio::test]
async fn postgres_store_works() {
    every_table(&postgres_store().await).await;
}

/// A broadcast whose stored options were damaged is an error naming it, never "no options" (which
/// would drop `--except` and message people who were left out).
#[tokio::test]
async fn a_broadcast_that_does_not_decode_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let room = owned_room_id!("!control:example.org");
    let admin = owned_user_id!("@admin:example.org");
    let id = store.create_broadcast(new_broadcast(&room, &admin, None)).await.unwrap();
    store.close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("bot.db").display()))
        .await
        .unwrap();
    sqlx::query("UPDATE broadcasts SET options_json = '{\"except\": 7}'").execute(&pool).await.unwrap();
    pool.close().await;
    let store = sqlite_store(&dir).await;
    let error = store.broadcast(id).await.unwrap_err();
    assert!(
        matches!(error, StoreError::Undecodable { broadcast, column: "options_json", .. } if broadcast == id),
        "{error}"
    );
    assert!(error.to_string().contains(&format!("broadcast {id}")), "{error}");
}

#[tokio::test]
async fn a_synapse_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("homeserver.db");
    let uri = format!("sqlite://{}", path.display());
    {
        let store = Store::connect(&uri, 1).await.unwrap();
        store.close().await;
    }
    let pool = sqlx::SqlitePool::connect(&uri).await.unwrap();
    sqlx::query("CREATE TABLE event_json (event_id TEXT)").execute(&pool).await.unwrap();
    pool.close().await;
    let error = Store::connect(&uri, 1).await.unwrap_err().to_string();
    assert!(error.contains("Synapse's own database"), "{error}");
    assert!(error.contains("event_json"), "{error}");
}

/// Two bot processes sharing one PostgreSQL database never claim the same delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_database_never_claim_the_same_delivery() {
    let (first, uri) = postgres_store_with_uri().await;
    let second = Store::connect(&uri, 4).await.expect("a second process's store");
    let room = owned_room_id!("!control:example.org");
    let admin = owned_user_id!("@admin:example.org");
    let id = first.create_broadcast(new_broadcast(&room, &admin, None)).await.unwrap();
    let users: Vec<OwnedUserId> =
        (0..300).map(|n| format!("@user{n}:example.org").try_into().unwrap()).collect();
    first.add_deliveries(id, &users).await.unwrap();
    assert!(first.transition(id, BroadcastState::Resolving, BroadcastState::Running).await.unwrap());

    let claim_all = |store: Store| {
        tokio::spawn(async move {
            let mut claimed = Vec::new();
            while let Some(claim) = store.claim_delivery(60_000).await.unwrap() {
                claimed.push(claim.user_id);
            }
            claimed
        })
    };
    let workers: Vec<_> =
        [first.clone(), first.clone(), second.clone(), second.clone()].into_iter().map(claim_all).collect();
    let mut all = Vec::new();
    let mut per_worker = Vec::new();
    for worker in workers {
        let claimed = worker.await.unwrap();
        per_worker.push(claimed.len());
        all.extend(claimed);
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "no delivery was claimed twice (per worker: {per_worker:?})");
    assert_eq!(all.len(), users.len(), "every delivery was claimed once");
}

/// Issue 25: a claim finds its recipients' DMs by key however small `dm_rooms` was when the
/// store's statements were first run. Seen failing before the fix (6 whole scans where 1 is
/// expected): PostgreSQL kept the plan it made while the table held a few rows, a scan of the
/// whole table, for every later claim; with autovacuum off nothing analyzes the table, and
/// nothing makes a new plan.
#[tokio::test]
async fn claims_on_postgres_find_dms_by_key_after_the_table_grew() {
    let uri = crate::harness::postgres_schema_uri();
    let store = Store::connect(&uri, 1).await.expect("open postgres store");
    let mut connection = sqlx::PgConnection::connect(&uri).await.expect("a second connection");
    let (room, admin) = (owned_room_id!("!control:example.org"), owned_user_id!("@admin:example.org"));
    let id = store.create_broadcast(new_broadcast(&room, &admin, None)).await.unwrap();
    let users: Vec<OwnedUserId> =
        (0..40).map(|n| format!("@user{n:02}:example.org").try_into().unwrap()).collect();
    store.add_deliveries(id, &users).await.unwrap();
    assert!(store.transition(id, BroadcastState::Resolving, BroadcastState::Running).await.unwrap());
    let add_dms = |user: &str, digits: u32, to: i64| {
        format!(
            "INSERT INTO dm_rooms (nonce, user_id, room_id, state, created_at, owner)
             SELECT 'n{user}' || i, '@{user}' || lpad(i::text, {digits}, '0') || ':example.org', '!r{user}' || i, 'ready', 0, ''
             FROM generate_series(0, {to}) i"
        )
    };
    sqlx::query(sqlx::AssertSqlSafe(add_dms("user", 2, 4))).execute(&mut connection).await.unwrap();
    let deliver_one = async || {
        let claim = store.claim_delivery(60_000).await.unwrap().expect("a due delivery");
        store.mark_delivered(&claim, &owned_room_id!("!dm"), &owned_event_id!("$sent")).await.unwrap();
    };
    for _ in 0..10 {
        deliver_one().await; // while dm_rooms is small: PostgreSQL settles on its plans
    }
    sqlx::query(sqlx::AssertSqlSafe(add_dms("other", 5, 30_000))).execute(&mut connection).await.unwrap();
    let before = published_scans(&store, &mut connection).await;
    for _ in 0..5 {
        deliver_one().await;
    }
    let after = published_scans(&store, &mut connection).await;
    assert_eq!(after - before, 1, "dm_rooms read whole only by the counting scan, by none of the 5 claims");
    connection.close().await.unwrap();
}

/// How many times `dm_rooms` was read whole in `store`'s schema, one of the scans made now on
/// the store's connection (its DM fingerprint counts the table): PostgreSQL publishes a session's
/// counts up to a second late, and they are read once the scan made now is in them (with
/// whatever the session did before it).
async fn published_scans(store: &Store, connection: &mut sqlx::PgConnection) -> i64 {
    let sql = "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'dm_rooms' AND schemaname = current_schema()";
    let published = sqlx::query_as::<_, (i64,)>(sql).fetch_one(&mut *connection).await.unwrap().0;
    store.dm_rooms_fingerprint(None).await.unwrap();
    for _ in 0..150 {
        let now = sqlx::query_as::<_, (i64,)>(sql).fetch_one(&mut *connection).await.unwrap().0;
        if now > published {
            return now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the scan made now was never counted");
}
