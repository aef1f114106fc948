//! Which rooms are control rooms, and what the bot does with invites.
//!
//! An invite from an `admin` is joined; the room becomes a control room unless it is a space or
//! public or encrypted (replies are posted into control rooms, so a public room must never be
//! one; the bot cannot read encrypted rooms and says so). Invites
//! from anyone else are declined. Rooms in `broadcast.control_rooms` are joined at start-up.
//! When the bot leaves or is removed, the room stops being a control room.

use std::sync::Arc;

use tracing::Instrument;

use ruma::{
    events::room::member::{MembershipState, OriginalRoomMemberEvent},
    EventId, OwnedRoomOrAliasId, RoomId, UserId,
};

use crate::{
    base::{
        i18n::Language,
        matrix::{how_open, txn_for, MatrixError, RoomApi, RoomFacts},
        permissions::Level,
    },
    rooms::Rooms,
    rooms::{handled::Handled, notices::post_notice},
};

/// Handles a change of the bot's own membership. An invite from another server is answered in
/// the background: joining or declining it goes over federation, which may take minutes.
#[tracing::instrument(skip_all, fields(room = %event.room_id, sender = %event.sender))]
pub async fn on_bot_membership(rooms: &Arc<Rooms>, event: &OriginalRoomMemberEvent) -> Handled {
    match event.content.membership {
        MembershipState::Invite if event.sender.server_name() == rooms.bot.server_name() => {
            on_invite(rooms, event).await;
            Handled::Done
        }
        MembershipState::Invite => {
            let (rooms, invite, span) = (rooms.clone(), event.clone(), tracing::Span::current());
            Handled::later(
                async move {
                    on_invite(&rooms, &invite).await;
                    Handled::Done
                }
                .instrument(span),
            )
        }
        MembershipState::Leave | MembershipState::Ban => {
            let forgotten = rooms.store.remove_control_room(&event.room_id).await;
            tracing::info!("bot left the room");
            Handled::of("cannot forget a control room", forgotten)
        }
        _ => Handled::Done,
    }
}

async fn on_invite(rooms: &Arc<Rooms>, invite: &OriginalRoomMemberEvent) {
    let (room, inviter) = (invite.room_id.as_ref(), invite.sender.as_ref());
    let level = rooms.permissions.level(inviter);
    if level < Level::Admin && invite.content.is_direct == Some(true) {
        if may_open_direct_chat(rooms, inviter, level).await {
            return rooms.senders.dms.adopt_invited(room, inviter, &invite.event_id).await;
        }
        tracing::info!(%level, "direct chat declined: a stranger");
        let reason = crate::base::i18n::t!(rooms.recipient_language(inviter).await, "dm-stranger-declined");
        return decline(rooms.hs(), room, &reason).await;
    }
    if level < Level::Admin {
        tracing::info!(%level, "invite declined: inviter is not an admin of the bot");
        return decline(rooms.hs(), room, &crate::base::i18n::t!(rooms.language(), "invite-not-admin")).await;
    }
    if let Err(error) = rooms.homeserver.join(&OwnedRoomOrAliasId::from(room.to_owned())).await {
        tracing::warn!(%error, "cannot join a room an admin invited the bot to");
        return;
    }
    if let Err(error) = adopt(rooms, room, inviter, &invite.event_id).await {
        tracing::warn!(%error, "joined, but cannot tell what kind of room this is");
    }
}

/// Whether `user` may open a direct chat with the bot (which then relays what they write into a
/// control room): local people whose level is not `none`, and anyone the bot has sent a
/// broadcast to.
async fn may_open_direct_chat(rooms: &Rooms, user: &UserId, level: Level) -> bool {
    if user.server_name() == rooms.bot.server_name() && level > Level::None {
        return true;
    }
    match rooms.store.was_delivered_to(user).await {
        Ok(delivered) => delivered,
        Err(error) => {
            tracing::error!(%error, "cannot look up past deliveries");
            false
        }
    }
}

async fn decline(hs: &dyn RoomApi, room: &RoomId, reason: &str) {
    if let Err(error) = hs.leave(room, Some(reason.to_owned())).await {
        tracing::warn!(%error, "cannot decline an invite");
    }
}

/// Why a room cannot be a control room (replies to broadcasts are posted into control rooms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoControlRoom {
    Space,
    /// Open to others, as [`how_open`] says.
    Open(&'static str),
    /// Encrypted, while the bot's encryption is off.
    Encrypted,
}

/// Why a room with `facts` cannot be a control room, if it cannot: the one check for invited
/// rooms and the rooms of `broadcast.control_rooms`.
fn why_no_control_room(encrypts: bool, facts: &RoomFacts) -> Option<NoControlRoom> {
    if facts.is_space {
        Some(NoControlRoom::Space)
    } else if let Some(open) = facts.open {
        Some(NoControlRoom::Open(open))
    } else if facts.is_encrypted && !encrypts {
        Some(NoControlRoom::Encrypted)
    } else {
        None
    }
}

/// Records a joined room as a control room when it may be one, and says so in the room (once per
/// invite: the notice's transaction ID derives from the invite event).
async fn adopt(
    rooms: &Arc<Rooms>,
    room: &RoomId,
    added_by: &UserId,
    invite: &EventId,
) -> Result<(), MatrixError> {
    let txn_id = txn_for("joined", invite);
    let facts = rooms.homeserver.room_facts(room).await?;
    let (prefix, language) = (rooms.broadcast.command_prefix.as_str(), rooms.language());
    match why_no_control_room(rooms.crypto.is_some(), &facts) {
        Some(NoControlRoom::Space) => {
            tracing::info!("joined a space (to see its members); not a control room");
            return Ok(());
        }
        Some(NoControlRoom::Open(open)) => {
            tracing::info!(open, "joined a room that is open to others; not a control room");
            let text =
                crate::base::i18n::t!(language, "control-room-open-joined", open = openness(language, open));
            post_notice(rooms.hs(), room, &txn_id, &text).await;
            return Ok(());
        }
        Some(NoControlRoom::Encrypted) => {
            tracing::info!("joined an encrypted room; not a control room");
            let text = crate::base::i18n::t!(language, "control-room-encrypted", prefix = prefix);
            post_notice(rooms.hs(), room, &txn_id, &text).await;
            return Ok(());
        }
        None => {}
    }
    if let Err(error) = rooms.store.add_control_room(room, added_by).await {
        tracing::error!(%error, "cannot record a control room");
        return Ok(());
    }
    tracing::info!("room is now a control room");
    let text = crate::base::i18n::t!(language, "control-room-adopted", prefix = prefix);
    post_notice(rooms.hs(), room, &txn_id, &text).await;
    Ok(())
}

/// The join rule or history visibility of `room` changed to `content`: a control room that anyone
/// could now join, knock on, join through another room, or read without joining stops being one
/// (replies from recipients are posted into control rooms). The bot says so there and in the log.
pub async fn on_access_change(rooms: &Rooms, room: &RoomId, content: &serde_json::Value) -> Handled {
    let Some(open) = how_open(content["join_rule"].as_str(), content["history_visibility"].as_str()) else {
        return Handled::Done;
    };
    match rooms.store.is_control_room(room).await {
        Ok(true) => {}
        Ok(false) => return Handled::Done,
        Err(error) => return Handled::of("cannot look up control rooms", Err(error)),
    }
    if let Err(error) = rooms.store.remove_control_room(room).await {
        return Handled::of("cannot forget a control room that was opened up", Err(error));
    }
    tracing::warn!(%room, open, "a control room was opened up; it is no longer a control room");
    let language = rooms.language();
    let text = crate::base::i18n::t!(language, "control-room-opened", open = openness(language, open));
    let txn = ruma::OwnedTransactionId::from(format!("opened.{}.{}", room, crate::base::store::now_ms()));
    post_notice(rooms.hs(), room, &txn, &text).await;
    Handled::Done
}

/// How open a room is, as [`how_open`] tells, in `language`.
fn openness(language: Language, open: &str) -> String {
    // how_open's values, matched: the catalogue's `room-open` writes them.
    let how = match open {
        "public" => "public",
        "open to knocks" => "knock",                          // not for people
        "open to the members of other rooms" => "restricted", // not for people
        "readable by anyone" => "world-readable",             // not for people
        _ => "other",
    };
    crate::base::i18n::t!(language, "room-open", how = how)
}

/// Joins the rooms of `broadcast.control_rooms` and records them, each once it passed the
/// checks a room an admin invites the bot to passes: a space, a room open to others, or an
/// encrypted room without encryption on is no control room (the log says which and why).
pub async fn join_configured(rooms: &Arc<Rooms>) {
    for room in &rooms.broadcast.control_rooms {
        let Ok(room_or_alias) = OwnedRoomOrAliasId::try_from(room.as_str()) else {
            continue;
        };
        let room_id = match rooms.homeserver.join(&room_or_alias).await {
            Ok(room_id) => room_id,
            Err(error) => {
                tracing::warn!(
                    %error,
                    %room,
                    "cannot join a room of broadcast.control_rooms (invite the bot first if it is invite-only)"
                );
                continue;
            }
        };
        let why = match rooms.homeserver.room_facts(&room_id).await {
            Ok(facts) => why_no_control_room(rooms.crypto.is_some(), &facts),
            Err(error) => {
                tracing::warn!(%error, %room, "cannot tell whether a room of broadcast.control_rooms is closed; it is left out");
                continue;
            }
        };
        if let Some(why) = why {
            tracing::warn!(%room, ?why, "a room of broadcast.control_rooms cannot be a control room: replies to broadcasts are posted there; it is left out");
            if let Err(error) = rooms.store.remove_control_room(&room_id).await {
                tracing::error!(%error, %room, "cannot forget a configured control room");
            }
            continue;
        }
        // The first configured room that could be joined is the default; later ones are not.
        let _ = rooms.default_control_room.set(room_id.clone());
        if let Err(error) = rooms.store.add_control_room(&room_id, &rooms.bot).await {
            tracing::error!(%error, %room, "cannot record a configured control room");
        }
    }
}

#[cfg(test)]
mod tests {
    use ruma::{events::room::member::MembershipState, OwnedUserId};

    use super::*;
    use crate::{base::store::SendOptions, rooms::testing::TestRooms};

    /// `inviter` opens a direct chat with the bot in a room with `others` in it too.
    async fn open_direct_chat(test: &TestRooms, inviter: &UserId, others: &[&UserId]) -> ruma::OwnedRoomId {
        let room = test.hs.room(inviter, others, false);
        test.hs.set_membership(&room, &test.rooms.bot, MembershipState::Invite);
        let invite = serde_json::json!({ "type": "m.room.member", "state_key": test.rooms.bot, "room_id": room,
            "sender": inviter, "event_id": format!("$invite-{}", inviter.localpart()), "origin_server_ts": 1,
            "content": { "membership": "invite", "is_direct": true } });
        let event: OriginalRoomMemberEvent = serde_json::from_value(invite).unwrap();
        on_bot_membership(&test.rooms, &event).await.to_end().await;
        room
    }

    async fn adopted(test: &TestRooms, user: &UserId) -> bool {
        test.store().live_dm(None, user).await.unwrap().is_some()
    }

    /// Issue 10, item 3: strangers cannot open a line into the control rooms.
    #[tokio::test]
    async fn only_local_people_with_a_level_or_former_recipients_may_open_a_direct_chat() {
        let test = TestRooms::new().await;
        let alice = test.hs.user("alice", None); // a broadcaster of example.org
        open_direct_chat(&test, &alice, &[]).await;
        assert!(adopted(&test, &alice).await, "a local broadcaster");

        let nobody = test.hs.user("nobody", None); // level none
        let room = open_direct_chat(&test, &nobody, &[]).await;
        assert!(!adopted(&test, &nobody).await, "level none");
        assert_eq!(
            test.hs.with(|state| state.rooms[&room].members[&test.rooms.bot].clone()),
            MembershipState::Leave
        );

        let eve: OwnedUserId = "@eve:elsewhere.org".try_into().unwrap();
        test.hs.with(|state| state.profiles.insert(eve.clone(), None));
        open_direct_chat(&test, &eve, &[]).await;
        assert!(!adopted(&test, &eve).await, "a remote stranger");

        let ann: OwnedUserId = "@ann:elsewhere.org".try_into().unwrap();
        test.hs.with(|state| state.profiles.insert(ann.clone(), None));
        let id = test
            .running_broadcast(
                &test.control_room().await,
                "Hi",
                std::slice::from_ref(&ann),
                SendOptions::default(),
            )
            .await;
        let claim = test.store().claim_delivery(60_000).await.unwrap().unwrap();
        test.store()
            .mark_delivered(&claim, ruma::room_id!("!old:example.org"), ruma::event_id!("$x"))
            .await
            .unwrap();
        let _ = id;
        open_direct_chat(&test, &ann, &[]).await;
        assert!(adopted(&test, &ann).await, "a remote person the bot has sent a broadcast to");
    }

    /// Issue 10, item 3: a "direct chat" with a third person in it is no DM.
    #[tokio::test]
    async fn a_direct_chat_must_be_private_with_exactly_two_members() {
        let test = TestRooms::new().await;
        let alice = test.hs.user("alice", None);
        let bob = test.hs.user("bob", None);
        let room = open_direct_chat(&test, &alice, &[&bob]).await;
        assert!(!adopted(&test, &alice).await);
        assert_eq!(
            test.hs.with(|state| state.rooms[&room].members[&test.rooms.bot].clone()),
            MembershipState::Leave
        );

        let carol = test.hs.user("carol", None);
        let public = test.hs.room(&carol, &[], false);
        test.hs.with(|state| state.rooms.get_mut(&public).unwrap().public = true);
        test.hs.set_membership(&public, &test.rooms.bot, MembershipState::Invite);
        let invite = serde_json::json!({ "type": "m.room.member", "state_key": test.rooms.bot, "room_id": public,
            "sender": carol, "event_id": "$public", "origin_server_ts": 1,
            "content": { "membership": "invite", "is_direct": true } });
        on_bot_membership(&test.rooms, &serde_json::from_value(invite).unwrap()).await.to_end().await;
        assert!(!adopted(&test, &carol).await, "a public room is no DM");

        // Issue 22, item 11: a third person invited earlier counts, though not joined yet.
        let (dave, erin) = (test.hs.user("dave", None), test.hs.user("erin", None));
        let room = test.hs.room(&dave, &[], false);
        test.hs.set_membership(&room, &erin, MembershipState::Invite);
        test.hs.set_membership(&room, &test.rooms.bot, MembershipState::Invite);
        let invite = serde_json::json!({ "type": "m.room.member", "state_key": test.rooms.bot, "room_id": room,
            "sender": dave, "event_id": "$with-erin-invited", "origin_server_ts": 1,
            "content": { "membership": "invite", "is_direct": true } });
        on_bot_membership(&test.rooms, &serde_json::from_value(invite).unwrap()).await.to_end().await;
        assert!(!adopted(&test, &dave).await, "a room with a third person invited is no DM");
        assert_eq!(
            test.hs.with(|state| state.rooms[&room].members[&test.rooms.bot].clone()),
            MembershipState::Leave
        );
    }

    /// Issue 22, item 15: a room named in `broadcast.control_rooms` passes the checks an invited
    /// one passes: one that is open to others is left out (and forgotten if it was one).
    #[tokio::test]
    async fn a_configured_control_room_that_is_open_is_left_out() {
        let config = "broadcast:\n  control_rooms: [\"#open:example.org\", \"#closed:example.org\"]\n";
        let test = TestRooms::with_config(config).await;
        let admin: OwnedUserId = "@admin:example.org".try_into().unwrap();
        let (open, closed) = (test.hs.room(&admin, &[], false), test.hs.room(&admin, &[], false));
        test.hs.with(|state| {
            state.rooms.get_mut(&open).unwrap().public = true;
            state.aliases.insert(ruma::owned_room_alias_id!("#open:example.org"), open.clone());
            state.aliases.insert(ruma::owned_room_alias_id!("#closed:example.org"), closed.clone());
        });
        test.store().add_control_room(&open, &admin).await.unwrap();
        join_configured(&test.rooms).await;
        assert!(!test.store().is_control_room(&open).await.unwrap(), "a public room is no control room");
        assert!(test.store().is_control_room(&closed).await.unwrap());
        assert_eq!(test.rooms.default_control_room.get(), Some(&closed), "the first that may be one");
    }

    /// Issue 15: every way a room can be open reads in English as `how_open` says it, and has
    /// its own German words.
    #[test]
    fn every_openness_is_in_the_catalogue() {
        let cases = [
            (Some("public"), None),
            (Some("knock"), None),
            (Some("restricted"), None),
            (Some("other"), None),
            (None, Some("world_readable")),
        ];
        let mut german = std::collections::BTreeSet::new();
        for (join_rule, history) in cases {
            let open = crate::base::matrix::how_open(join_rule, history).unwrap();
            assert_eq!(openness(Language::En, open), open);
            german.insert(openness(Language::De, open));
        }
        assert_eq!(german.len(), cases.len(), "{german:?}");
    }

    /// Issue 15: with `language: de`, a control room that was opened up is told so in German.
    #[tokio::test]
    async fn in_german_an_opened_control_room_is_told_in_german() {
        let test = TestRooms::with_config("language: de\n").await;
        let control = test.control_room().await;
        on_access_change(&test.rooms, &control, &serde_json::json!({ "join_rule": "public" })).await;
        assert!(!test.store().is_control_room(&control).await.unwrap());
        assert_eq!(
            test.hs.bodies_in(&control),
            ["Dieser Raum ist kein Steuerraum mehr: Er ist jetzt öffentlich, und Antworten auf Rundsendungen sind \
              vertraulich. Machen Sie ihn wieder nur auf Einladung zugänglich und nicht für alle lesbar und laden \
              Sie mich dann erneut ein, oder verwenden Sie einen anderen privaten Raum."]
        );
    }
}
