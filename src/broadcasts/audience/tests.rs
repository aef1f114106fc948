use super::*;

/// A broadcast's stored audience reads back as it was checked, and an alias, which only an
/// older version stored, is refused rather than looked up a second time.
#[test]
fn a_stored_audience_reads_back_as_checked_and_an_alias_is_refused() {
    let words: Vec<String> = ["!room:example.org", "@alice:example.org", "server", "search:ann"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let audience = Authorized::stored(&words).expect("stored words");
    assert_eq!(audience.words(), words);
    assert_eq!(audience.rooms().map(|(id, _)| id.to_string()).collect::<Vec<_>>(), ["!room:example.org"]);
    let error = Authorized::stored(&["#team:example.org".to_owned()]).unwrap_err();
    assert!(
        error.text(Language::En).contains("was stored by an older version"),
        "{}",
        error.text(Language::En)
    );
}

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

/// Issue 12: `search:<text>` is an audience for admins; an empty search is refused.
#[tokio::test]
async fn searches_parse_and_need_an_admin() {
    let targets = parse_targets(&words(&["search:Smith"])).unwrap();
    assert_eq!(targets, [Target::Search("Smith".into())]);
    let error = parse_targets(&words(&["search:"])).unwrap_err();
    assert!(error.to_string().contains("searches for nothing"), "{error}");
    let test = TestBroadcasts::new().await;
    let bob = ruma::user_id!("@bob:example.org");
    let refused = authorize(test.hs.as_ref(), bob, Level::Broadcaster, &targets).await.unwrap_err();
    assert!(
        refused.to_string().starts_with("Only admins of the bot may send to `search:Smith`"),
        "{refused}"
    );
    assert!(authorize(test.hs.as_ref(), bob, Level::Admin, &targets).await.is_ok());
}

/// Issue 12: a search reaches the active local accounts whose ID or display name contains
/// the text, with the exclusions of `server`.
#[tokio::test]
async fn a_search_reaches_exactly_the_matching_accounts() {
    let test = TestBroadcasts::new().await;
    let hs = &test.hs;
    hs.with(|state| state.server_admin = true);
    let anna = hs.user("anna.smith", None);
    let ben = hs.user("ben", Some("Ben Smithers"));
    hs.user("carol", Some("Carol Jones"));
    let gone = hs.user("dan.smith", None);
    hs.with(|state| state.accounts.iter_mut().find(|a| a.name == gone).unwrap().deactivated = true);
    let except = [hs.user("eve.smith", None)];
    let id = test.running_broadcast(&test.control_room().await, "Hi", &[], SendOptions::default()).await;
    let exclusions = Exclusions::new(&test.broadcasts.rooms.bot, &[], &except);
    let targets = parse_targets(&words(&["search:smith"])).unwrap();
    let count = resolve_as_admin(test.store(), hs.as_ref(), &exclusions, id, &targets, false).await.unwrap();
    assert_eq!(count, 2);
    assert_eq!(test.store().sample_recipients(id, 10).await.unwrap(), [anna, ben]);
}

/// Issue 11: an `@user` word is checked, and named, by one profile look-up at resolution;
/// someone the homeserver does not know is recorded as failed and never gets a room.
#[tokio::test]
async fn named_users_are_looked_up_once_and_unknown_ones_fail_with_the_reason() {
    let test = crate::broadcasts::testing::TestBroadcasts::new().await;
    let alice = test.hs.user("alice", Some("Alice"));
    let control = test.control_room().await;
    let id =
        test.broadcast_in(BroadcastState::Resolving, &control, "Hi", &[], &[], SendOptions::default()).await;
    let words = ["@alice:example.org".to_owned(), "@ghost:example.org".to_owned()];
    let targets = parse_targets(&words).unwrap();
    let exclusions = Exclusions::new(&test.broadcasts.rooms.bot, &[], &[]);
    let total = resolve(
        test.store(),
        test.broadcasts.rooms.hs(),
        &exclusions,
        id,
        &targets,
        &Rooms::default(),
        true,
        Language::En,
    )
    .await
    .unwrap();
    assert_eq!(total, 2);
    assert_eq!(test.hs.count("profile"), 2);
    let failed = test.store().deliveries_with_reason(id, DeliveryState::Failed, 10).await.unwrap();
    assert_eq!(failed, [("@ghost:example.org".try_into().unwrap(), "this user does not exist".to_owned())]);
    let claim = {
        test.store().transition(id, BroadcastState::Resolving, BroadcastState::Running).await.unwrap();
        test.store().claim_delivery(60_000).await.unwrap().expect("alice's delivery")
    };
    assert_eq!((claim.user_id, claim.displayname), (alice, Some("Alice".to_owned())));
}

#[test]
fn bad_words_say_what_is_expected() {
    let error = parse_targets(&["everyone".to_string()]).unwrap_err();
    assert!(
        error.to_string().contains("use @user:server, #room:server, !roomid, server or search:<text>"),
        "{error}"
    );
    assert!(parse_targets(&["@nocolon".to_string()]).is_err());
    assert!(parse_users(&["bob".to_string()]).unwrap_err().to_string().contains("--except"));
}

use crate::{
    base::{
        matrix::fake::FakeHomeserver,
        store::{BroadcastState, DeliveryState, SendOptions},
    },
    broadcasts::testing::TestBroadcasts,
};

/// Resolves as an admin would: every room of a hierarchy with `recursive`.
async fn resolve_as_admin(
    store: &Store,
    hs: &dyn Homeserver,
    exclusions: &Exclusions<'_>,
    id: BroadcastId,
    targets: &[Target],
    recursive: bool,
) -> Result<u64, AudienceError> {
    let admin = ruma::user_id!("@admin:example.org");
    // As a command does: aliases resolved once, when checked.
    let audience = authorize(hs, admin, Level::Admin, targets).await?;
    let rooms = rooms(hs, &audience, recursive, admin, Level::Admin).await?;
    resolve(store, hs, exclusions, id, audience.targets(), &rooms, true, Language::En).await
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|word| word.to_string()).collect()
}

/// Who may address what: level × audience kind × membership × power level.
#[tokio::test]
async fn authorize_follows_the_table_of_levels_and_power() {
    let hs = FakeHomeserver::default();
    let owner = hs.user("owner", None);
    let sender = hs.user("sender", None);
    let outsider = hs.user("outsider", None);
    // (sender's power level in the room, whether they are joined)
    let mut rooms = Vec::new();
    for (power, joined) in
        [(None, true), (Some(49), true), (Some(50), true), (Some(100), true), (Some(100), false)]
    {
        let members: Vec<&UserId> = if joined { vec![&sender] } else { vec![] };
        let room = hs.room(&owner, &members, true);
        if let Some(power) = power {
            hs.set_power(&room, &sender, power);
        }
        rooms.push((room, power, joined));
    }
    let created = hs.room(&sender, &[], true); // room version 12: the creator has unlimited power
    for level in [Level::Broadcaster, Level::Admin] {
        let admin = level == Level::Admin;
        let check = |targets: Vec<String>| {
            let hs = &hs;
            let sender = sender.clone();
            async move {
                let targets = parse_targets(&targets).unwrap();
                authorize(hs, &sender, level, &targets).await
            }
        };
        assert!(check(words(&[outsider.as_str()])).await.is_ok(), "{level}: a user");
        let server = check(words(&["server"])).await;
        assert_eq!(server.is_ok(), admin, "{level}: server");
        for (room, power, joined) in &rooms {
            let allowed = admin || (*joined && power.unwrap_or(0) >= REQUIRED_POWER_LEVEL);
            let result = check(words(&[room.as_str()])).await;
            assert_eq!(result.is_ok(), allowed, "{level}, power {power:?}, joined {joined}: {result:?}");
            if let Err(error) = result {
                let shown = power.unwrap_or(0);
                assert!(error.to_string().contains(&format!("you have {shown}")), "{error}");
                assert_eq!(error.to_string().contains("are not a member"), !joined, "{error}");
            }
        }
        assert!(check(words(&[created.as_str()])).await.is_ok(), "{level}: the room's creator");
    }
}

/// Issue 10, item 4: a creator's unlimited power exists from room version 12 on; in an older
/// room a demoted creator has the power level the room gives them.
#[tokio::test]
async fn a_demoted_creator_of_an_old_room_keeps_no_rights() {
    let hs = FakeHomeserver::default();
    let sender = hs.user("sender", None);
    for (version, allowed) in [("10", false), ("11", false), ("12", true)] {
        // The creator is not listed in the power levels: removed (old rooms) or implicit (12).
        let room = hs.room(&sender, &[], true);
        hs.with(|state| {
            state.rooms.get_mut(&room).unwrap().create = serde_json::json!({ "room_version": version })
        });
        let targets = parse_targets(&words(&[room.as_str()])).unwrap();
        let result = authorize(&hs, &sender, Level::Broadcaster, &targets).await;
        assert_eq!(result.is_ok(), allowed, "room version {version}: {result:?}");
    }
}

#[tokio::test]
async fn a_room_the_bot_cannot_see_or_an_unknown_alias_is_refused_with_the_reason() {
    let hs = FakeHomeserver::default();
    let owner = hs.user("owner", None);
    let sender = hs.user("sender", None);
    let hidden = hs.room(&owner, &[&sender], false);
    let targets = parse_targets(&words(&[hidden.as_str()])).unwrap();
    let error = authorize(&hs, &sender, Level::Broadcaster, &targets).await.unwrap_err();
    assert!(error.to_string().starts_with(&format!("I cannot see `{hidden}`")), "{error}");
    let targets = parse_targets(&words(&["#nowhere:example.org"])).unwrap();
    let error = authorize(&hs, &sender, Level::Broadcaster, &targets).await.unwrap_err();
    assert_eq!(error.to_string(), "There is no room `#nowhere:example.org`.");
}

#[tokio::test]
async fn resolve_queues_each_person_once_and_leaves_out_every_exclusion() {
    let test = TestBroadcasts::new().await;
    let (hs, store) = (&test.hs, test.store());
    let people: Vec<OwnedUserId> =
        ["alice", "bob", "carol", "dave"].iter().map(|name| hs.user(name, None)).collect();
    let helper = hs.user("helper_bot", None); // broadcast.exclude's default: ends in _bot
    let persona = hs.user("broadcast_hr", None); // the bot's persona namespace
    let refs: Vec<&UserId> = people.iter().map(|user| user.as_ref()).chain([&*helper, &*persona]).collect();
    let space = hs.room(&people[0], &refs, true);
    let alias = hs.alias(&space, "company");
    let hidden = hs.room(&people[0], &[&people[1]], false); // the bot is not in it
    hs.with(|state| state.rooms.get_mut(&space).unwrap().children.push(hidden.clone()));
    let id = test.running_broadcast(&test.control_room().await, "Hi", &[], SendOptions::default()).await;

    let except = [people[3].clone()];
    let exclusions =
        Exclusions::new(&test.broadcasts.rooms.bot, &test.broadcasts.rooms.broadcast.exclude, &except);
    let targets = parse_targets(&words(&[alias.as_str(), people[0].as_str(), space.as_str()])).unwrap();
    let count = resolve_as_admin(store, hs.as_ref(), &exclusions, id, &targets, false).await.unwrap();
    let queued = store.sample_recipients(id, 100).await.unwrap();
    // The room's creator is people[0]; the admin of the control room is not in the space.
    assert_eq!(queued, people[..3], "each once; no bot, persona, helper bot or --except");
    assert_eq!(count, 3, "duplicates across words are counted once");

    // --recursive reaches a room the bot is not in only through the admin API.
    let error = resolve_as_admin(store, hs.as_ref(), &exclusions, id, &targets, true).await.unwrap_err();
    assert!(error.to_string().contains(&format!("I am not in `{hidden}`")), "{error}");
    hs.with(|state| state.server_admin = true);
    assert_eq!(
        resolve_as_admin(store, hs.as_ref(), &exclusions, id, &targets, true).await.unwrap(),
        0,
        "bob had it"
    );
}

#[tokio::test]
async fn the_server_audience_skips_guests_deactivated_bots_and_appservice_accounts() {
    let test = TestBroadcasts::new().await;
    let hs = &test.hs;
    let alice = hs.user("alice", None);
    let bob = hs.user("bob", None);
    for (localpart, change) in [
        ("guest", (|account: &mut AdminUser| account.is_guest = true) as fn(&mut AdminUser)),
        ("gone", |account| account.deactivated = true),
        ("support", |account| account.user_type = Some("support".into())),
        ("ghost", |account| {
            account.appservice_id = Some("bridge".into());
            account.last_seen_ts = None;
        }),
    ] {
        let user = hs.user(localpart, None);
        hs.with(|state| change(state.accounts.iter_mut().find(|a| a.name == user).unwrap()));
    }
    let id = test.running_broadcast(&test.control_room().await, "Hi", &[], SendOptions::default()).await;
    let exclusions =
        Exclusions::new(&test.broadcasts.rooms.bot, &test.broadcasts.rooms.broadcast.exclude, &[]);
    let targets = [Target::Server];
    let error =
        resolve_as_admin(test.store(), hs.as_ref(), &exclusions, id, &targets, false).await.unwrap_err();
    assert!(error.to_string().contains("I must be a Synapse server admin"), "{error}");
    assert!(
        error.to_string().contains("http://fake.example.org/_synapse/admin/v2/users/@broadcast:example.org"),
        "{error}"
    );

    hs.with(|state| state.server_admin = true);
    assert_eq!(
        resolve_as_admin(test.store(), hs.as_ref(), &exclusions, id, &targets, false).await.unwrap(),
        3
    );
    let queued = test.store().sample_recipients(id, 10).await.unwrap();
    let admin: OwnedUserId = "@admin:example.org".try_into().unwrap();
    assert_eq!(queued, [admin, alice, bob], "the bot itself is left out too");
    assert_eq!(hs.count("admin_user"), 1, "only the never-seen account is looked up one by one");
}

/// Issue 10, item 16: other appservices' accounts (bridged ghosts) are left out of room and
/// space audiences too, not only of `server`.
#[tokio::test]
async fn bridged_ghosts_in_a_room_are_left_out() {
    let test = TestBroadcasts::new().await;
    let (hs, store) = (&test.hs, test.store());
    hs.with(|state| state.server_admin = true);
    let alice = hs.user("alice", None);
    let ghost = hs.user("telegram_123", None);
    hs.with(|state| {
        let account = state.accounts.iter_mut().find(|account| account.name == ghost).unwrap();
        account.appservice_id = Some("telegram".into());
    });
    let room = hs.room(&alice, &[&ghost], true);
    let id = test.running_broadcast(&test.control_room().await, "Hi", &[], SendOptions::default()).await;
    let exclusions = Exclusions::new(&test.broadcasts.rooms.bot, &[], &[]);
    let targets = parse_targets(&words(&[room.as_str()])).unwrap();
    resolve_as_admin(store, hs.as_ref(), &exclusions, id, &targets, false).await.unwrap();
    assert_eq!(
        store.sample_recipients(id, 10).await.unwrap(),
        std::slice::from_ref(&alice),
        "not the bridged ghost"
    );
    let looked_up = hs.count("admin_user");
    let exclusions = Exclusions::new(&test.broadcasts.rooms.bot, &[], &[]);
    resolve_as_admin(store, hs.as_ref(), &exclusions, id, &targets, false).await.unwrap();
    assert_eq!(hs.count("admin_user"), looked_up, "issue 11: looked up once ever, not per broadcast");

    // Without server-admin rights nothing can be told: one refused look-up, then no more.
    hs.with(|state| state.server_admin = false);
    let others: Vec<OwnedUserId> = (0..20).map(|n| hs.user(&format!("new{n}"), None)).collect();
    let others: Vec<&UserId> = others.iter().map(|user| user.as_ref()).collect();
    let targets = parse_targets(&words(&[hs.room(&alice, &others, true).as_str()])).unwrap();
    let exclusions = Exclusions::new(&test.broadcasts.rooms.bot, &[], &[]);
    let before = hs.count("admin_user");
    resolve_as_admin(store, hs.as_ref(), &exclusions, id, &targets, false).await.unwrap();
    assert_eq!(hs.count("admin_user") - before, 1, "asked once, not per member");
}

/// Issue 25, item 3: the members of a large room are checked for bridges through the user
/// list, one request per 500 accounts, and only the accounts that never logged in one by one.
/// Seen failing before: 602 look-ups, one per member.
#[tokio::test]
async fn a_large_room_is_checked_for_bridges_through_the_user_list() {
    let test = TestBroadcasts::new().await;
    let hs = &test.hs;
    hs.with(|state| state.server_admin = true);
    let owner = hs.user("owner", None);
    let members: Vec<OwnedUserId> = (0..600).map(|n| hs.user(&format!("member{n:03}"), None)).collect();
    let ghost = hs.user("telegram_123", None);
    hs.with(|state| {
        let account = state.accounts.iter_mut().find(|account| account.name == ghost).unwrap();
        (account.appservice_id, account.last_seen_ts) = (Some("telegram".into()), None);
    });
    let mut joined: Vec<&UserId> = members.iter().map(|user| user.as_ref()).collect();
    joined.push(&ghost);
    let room = hs.room(&owner, &joined, true);
    let id = test.running_broadcast(&test.control_room().await, "Hi", &[], SendOptions::default()).await;
    let exclusions = Exclusions::new(&test.broadcasts.rooms.bot, &[], &[]);
    let targets = parse_targets(&words(&[room.as_str()])).unwrap();
    requests(&test);
    let queued = resolve_as_admin(test.store(), hs.as_ref(), &exclusions, id, &targets, false).await.unwrap();
    assert_eq!(queued, 601, "the owner and the members, not the ghost");
    let asked = requests(&test);
    let count = |endpoint: &str| asked.iter().find(|(name, _)| *name == endpoint).map_or(0, |(_, n)| *n);
    assert_eq!((count("admin_users_page"), count("admin_user")), (2, 1), "{asked:?}");
}

/// Requests per endpoint since the last call, and forgets them.
fn requests(test: &TestBroadcasts) -> Vec<(&'static str, usize)> {
    test.hs.with(|state| std::mem::take(&mut state.requests)).into_iter().collect()
}

/// A broadcast of `text` to `targets`, resolved and delivered to its `count` recipients
/// by the workers; returns the requests of the resolution and of the delivery.
async fn resolve_and_deliver(
    test: &TestBroadcasts,
    text: &str,
    targets: &[crate::broadcasts::audience::Target],
    count: i64,
) -> (Vec<(&'static str, usize)>, Vec<(&'static str, usize)>) {
    let control = test.control_room().await;
    requests(test);
    let id =
        test.broadcast_in(BroadcastState::Resolving, &control, text, &[], &[], SendOptions::default()).await;
    let exclusions = crate::broadcasts::audience::Exclusions::new(&test.delivery.rooms.bot, &[], &[]);
    let (rooms, needs_names) =
        (crate::broadcasts::audience::Rooms::default(), text.contains("{displayname}"));
    crate::broadcasts::audience::resolve(
        test.store(),
        test.delivery.rooms.hs(),
        &exclusions,
        id,
        targets,
        &rooms,
        needs_names,
        test.delivery.rooms.language(),
    )
    .await
    .unwrap();
    let resolution = requests(test);
    test.store().transition(id, BroadcastState::Resolving, BroadcastState::Running).await.unwrap();
    test.deliver_all(id, count).await;
    (resolution, requests(test))
}

/// Issue 11: what a recipient costs the homeserver. Resolution checks an `@user` word and
/// reads its name with one profile look-up; a new DM then costs `createRoom` and the send, a
/// reused one the send alone (plus, once per process, a look at whether DMs are made
/// encrypted). No member list, no membership and no profile per send. Issue 25, item 3:
/// someone seen before is not looked up again, even when the message needs their name; the
/// name their member event in the DM shows later is the one the next copy uses. Seen failing
/// before names were kept: the second round asked for 10 profiles.
#[tokio::test]
async fn a_new_dm_costs_create_and_send_and_a_reused_one_the_send_alone() {
    let test = TestBroadcasts::new().await;
    let users: Vec<OwnedUserId> =
        (0..10).map(|n| test.hs.user(&format!("user{n}"), Some(&format!("User {n}")))).collect();
    let words: Vec<String> = users.iter().map(|user| user.to_string()).collect();
    let targets = crate::broadcasts::audience::parse_targets(&words).unwrap();
    let (resolution, delivery) = resolve_and_deliver(&test, "Hello {displayname}", &targets, 10).await;
    assert_eq!(resolution, [("profile", 10)], "one look-up per word");
    assert_eq!(delivery, [("create_dm", 10), ("send_raw", 10), ("state", 1)], "new DMs");
    let (resolution, delivery) = resolve_and_deliver(&test, "Hello {displayname}", &targets, 10).await;
    assert_eq!((resolution, delivery), (vec![], vec![("send_raw", 10)]), "names needed, and known");
    let (resolution, delivery) = resolve_and_deliver(&test, "Hello", &targets, 10).await;
    assert_eq!((resolution, delivery), (vec![], vec![("send_raw", 10)]), "no names needed");
    let dms = &test.broadcasts.rooms.senders.dms;
    let dm = test.store().live_dm(None, &users[3]).await.unwrap().unwrap();
    dms.member_changed(&dm, &users[3], &MembershipState::Join, Some("Dr User 3")).await.unwrap();
    let (resolution, _) = resolve_and_deliver(&test, "Hello {displayname}", &targets, 10).await;
    assert_eq!(resolution, [], "the name from the member event");
    let bodies = test.hs.bodies_in(&test.hs.dms_with(&users[3])[0]);
    assert_eq!(bodies, ["Hello User 3", "Hello User 3", "Hello", "Hello Dr User 3"]);
}
