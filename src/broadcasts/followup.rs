//! Follow-ups of delivered copies: `!bc edit` replaces each copy's text (`m.replace`, the
//! templates filled in again), `!bc redact` retracts each copy, `!bc poll close` ends the poll in
//! each DM. The command marks the broadcast in the store; this task finds the copies that still
//! need something, a batch at a time, and posts a summary into the control room when none is
//! left. Transaction IDs derive from (broadcast, recipient, what), so a follow-up made again
//! after a crash changes nothing twice.

use std::{sync::Arc, time::Duration};

use futures_util::{stream, StreamExt};
use ruma::OwnedTransactionId;
use tokio::sync::watch;

use crate::{
    base::{
        i18n::Language,
        matrix::{send_json, Homeserver, MatrixError},
        poll::{Poll, Tally},
        store::{Broadcast, BroadcastId, Followup, FollowupDone, StoreError},
    },
    broadcasts::Broadcasts,
    rooms::{
        copies::personalise,
        notices::{post_notice, titled},
    },
};

/// How often broadcasts with follow-ups are looked at while none has work.
const INTERVAL: Duration = Duration::from_secs(1);
/// How many copies are read at once; `broadcast.concurrency` of them are changed at a time.
const BATCH: i64 = 200;
/// How often a copy's follow-up is tried before it is recorded as failed.
const MAX_ATTEMPTS: i64 = 8;

/// Makes follow-ups until `stopped`: round after round while there are copies to change, then
/// every second.
pub async fn run(broadcasts: Arc<Broadcasts>, mut stopped: watch::Receiver<bool>) {
    loop {
        let busy = round(&broadcasts).await.unwrap_or_else(|error| {
            tracing::error!(%error, "cannot follow up on delivered copies");
            false
        });
        if *stopped.borrow() {
            return;
        }
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(INTERVAL) => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
        }
    }
}

/// One batch of follow-ups for each broadcast that has some; a summary for each that has none
/// left. True when copies were changed (another round may find more).
pub async fn round(broadcasts: &Broadcasts) -> Result<bool, StoreError> {
    let mut busy = false;
    for id in broadcasts.rooms.store.broadcasts_with_followups().await? {
        match batch(broadcasts, id).await? {
            Some(changed) => busy |= changed,
            None => {
                tracing::warn!(broadcast = %id, "the homeserver cannot be reached; follow-ups wait for it");
                return Ok(false);
            }
        }
    }
    Ok(busy)
}

/// What every follow-up of one broadcast needs to know.
struct Job<'a> {
    broadcast: Broadcast,
    /// Who sent the copies (the bot or the broadcast's persona), who must change them; the
    /// reason when it cannot write.
    author: Result<&'a dyn Homeserver, MatrixError>,
    /// The poll and its final tally, when the poll was closed.
    ending: Option<(Poll, Tally)>,
    /// Why the copies are retracted.
    reason: Option<String>,
    /// The language of the poll's end in the DMs.
    language: Language,
}

/// One batch of follow-ups of broadcast `id`, or its summary when none is left. Whether copies
/// were changed; `None` when the homeserver could not be reached.
async fn batch(broadcasts: &Broadcasts, id: BroadcastId) -> Result<Option<bool>, StoreError> {
    let broadcast = broadcasts.rooms.store.broadcast(id).await?;
    let copies = broadcasts.rooms.store.followups(id, BATCH).await?;
    if copies.is_empty() {
        if broadcasts.rooms.store.close_followups_if_done(id).await? {
            report(broadcasts, &broadcast).await?;
        }
        return Ok(Some(false));
    }
    let author =
        broadcasts.rooms.sender(broadcast.options.persona.as_deref()).await.map(|sender| sender.homeserver);
    if author.as_ref().is_err_and(MatrixError::is_outage) {
        return Ok(None);
    }
    let ending = match Poll::of(&broadcast.message) {
        Some(poll) if broadcast.poll_closed_at.is_some() => {
            let tally = poll.tally(&broadcasts.rooms.store.poll_answers(id).await?);
            Some((poll, tally))
        }
        _ => None,
    };
    let reason = broadcasts.rooms.store.retract_reason(id).await?;
    let job = &Job { broadcast, author, ending, reason, language: broadcasts.rooms.language() };
    let steps: Vec<Step> = stream::iter(copies)
        .map(|copy| async move { follow_up(broadcasts, job, &copy).await })
        .buffer_unordered(broadcasts.rooms.broadcast.concurrency.max(1))
        .collect::<Vec<Result<Step, StoreError>>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    if steps.contains(&Step::Unreachable) {
        return Ok(None);
    }
    Ok(Some(steps.contains(&Step::Recorded)))
}

/// What became of one copy's follow-up in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Made, or failed for good: recorded.
    Recorded,
    /// Failed for now: tried again in a later round.
    Later,
    /// The homeserver could not be reached: nothing recorded, nothing counted.
    Unreachable,
}

/// Retracts, edits or ends the poll of one copy, and records what became of it.
async fn follow_up(broadcasts: &Broadcasts, job: &Job<'_>, copy: &Followup) -> Result<Step, StoreError> {
    let Some(done) = needed(job, copy) else { return Ok(Step::Later) };
    if copy.in_retired_dm && done != FollowupDone::Retracted {
        // The DM gained a third member: what is sent there now, they would read. A retraction
        // still goes, and takes the copy away from them too.
        broadcasts.rooms.store.skip_followup(copy, done).await?;
        return Ok(Step::Recorded);
    }
    let result = match &job.author {
        Ok(author) => make(*author, job, copy, done).await,
        Err(error) => Err(error.clone()),
    };
    match result {
        Ok(()) => broadcasts.rooms.store.record_followup(copy, done, None).await?,
        Err(error) if error.is_outage() => return Ok(Step::Unreachable),
        Err(error @ MatrixError::Permanent { .. }) => {
            broadcasts.rooms.store.record_followup(copy, done, Some(&error.to_string())).await?
        }
        Err(error) if copy.attempts + 1 >= MAX_ATTEMPTS => {
            let error = error.to_string();
            let reason = crate::base::i18n::t!(
                broadcasts.rooms.language(),
                "delivery-gave-up",
                attempts = MAX_ATTEMPTS,
                error = error
            );
            broadcasts.rooms.store.record_followup(copy, done, Some(&reason)).await?
        }
        Err(error) => {
            tracing::debug!(%error, user = %copy.user_id, "a follow-up will be tried again");
            broadcasts.rooms.store.retry_followup(copy).await?;
            return Ok(Step::Later);
        }
    }
    Ok(Step::Recorded)
}

/// What a copy needs: a retraction wins over an edit, an edit comes before the poll's end.
fn needed(job: &Job<'_>, copy: &Followup) -> Option<FollowupDone> {
    let broadcast = &job.broadcast;
    if broadcast.retracted_at.is_some() {
        Some(FollowupDone::Retracted)
    } else if copy.shown_revision < broadcast.revision {
        Some(FollowupDone::Edited { revision: broadcast.revision })
    } else {
        job.ending.is_some().then_some(FollowupDone::PollEnded)
    }
}

/// Makes follow-up `done` of a copy, as its author.
async fn make(
    author: &dyn Homeserver,
    job: &Job<'_>,
    copy: &Followup,
    done: FollowupDone,
) -> Result<(), MatrixError> {
    let broadcast = &job.broadcast;
    match (done, &job.ending) {
        (FollowupDone::Retracted, _) => {
            let txn = txn("retract", broadcast.id, copy, 0);
            author.redact(&copy.room_id, &copy.event_id, &txn, job.reason.as_deref()).await
        }
        (FollowupDone::Edited { revision }, _) => {
            let message = personalise(author, &broadcast.message, &copy.user_id, &copy.displayname).await?;
            let txn = txn("edit", broadcast.id, copy, revision);
            let edit = message.replacing(&copy.event_id);
            send_json(author, &copy.room_id, &txn, &message.event_type, &edit).await.map(|_| ())
        }
        (FollowupDone::PollEnded, Some((poll, tally))) => {
            let (event_type, content) = poll.end_event(job.language, &copy.event_id, tally);
            let txn = txn("poll-end", broadcast.id, copy, 0);
            send_json(author, &copy.room_id, &txn, event_type, &content).await.map(|_| ())
        }
        (FollowupDone::PollEnded, None) => Ok(()),
    }
}

/// The transaction ID of follow-up `kind` (of `revision`) of a copy.
fn txn(kind: &str, id: BroadcastId, copy: &Followup, revision: i64) -> OwnedTransactionId {
    OwnedTransactionId::from(format!("{kind}-{}-{revision}-{}", id.0, copy.user_id))
}

/// Tells the control room that every copy of a broadcast was followed up.
async fn report(broadcasts: &Broadcasts, broadcast: &Broadcast) -> Result<(), StoreError> {
    let counts = broadcasts.rooms.store.followup_counts(broadcast.id).await?;
    let (language, titled, done) = (broadcasts.rooms.language(), titled(broadcast), counts.done);
    let mut text = if broadcast.retracted_at.is_some() {
        crate::base::i18n::t!(language, "followup-retracted", titled = titled, count = done)
    } else if broadcast.poll_closed_at.is_some() {
        crate::base::i18n::t!(language, "followup-poll-closed", titled = titled, count = done)
    } else {
        crate::base::i18n::t!(language, "followup-edited", titled = titled, count = done)
    };
    if counts.skipped > 0 {
        text.push_str(&crate::base::i18n::t!(language, "followup-skipped", count = counts.skipped));
    }
    if counts.failed > 0 {
        let id = broadcast.id.to_string();
        text.push_str(&crate::base::i18n::t!(language, "followup-failed", count = counts.failed, id = id));
    }
    text.push('.');
    let kind = (broadcast.revision, broadcast.retracted_at.is_some(), broadcast.poll_closed_at.is_some());
    let txn =
        OwnedTransactionId::from(format!("followups-{}-{}-{}-{}", broadcast.id.0, kind.0, kind.1, kind.2));
    tracing::info!(broadcast = %broadcast.id, done = counts.done, skipped = counts.skipped, failed = counts.failed, "follow-ups finished");
    post_notice(broadcasts.rooms.hs(), &broadcast.control_room_id, &txn, &text).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use ruma::{OwnedUserId, RoomId};
    use serde_json::json;

    use super::*;
    use crate::{
        base::{
            matrix::fake::{forbidden, Sent},
            message::StoredMessage,
            poll::tests::element_poll,
            store::{NewBroadcast, Outcome, SendOptions},
        },
        broadcasts::testing::TestBroadcasts,
        delivery::transaction_id,
    };

    /// Delivers the next due copy as a worker does, from the broadcast as it reads it now, or
    /// as it read it earlier (`read`); returns the copy.
    async fn deliver_next(test: &TestBroadcasts, read: Option<&Broadcast>) -> Sent {
        let claim = test.store().claim_delivery(60_000).await.unwrap().expect("a due delivery");
        let broadcast = match read {
            Some(read) => read.clone(),
            None => test.store().broadcast(claim.broadcast_id).await.unwrap(),
        };
        let message = personalise(test.hs.as_ref(), &broadcast.message, &claim.user_id, &claim.displayname)
            .await
            .unwrap();
        let sender = test.broadcasts.rooms.sender(broadcast.options.persona.as_deref()).await.unwrap();
        let room = sender.dms.ensure(&claim.user_id).await.unwrap().room;
        let txn = transaction_id(claim.broadcast_id, &claim.user_id);
        let event =
            send_json(sender.homeserver, &room, &txn, &message.event_type, &message.content).await.unwrap();
        let outcome = Outcome::delivered(&room, &event, broadcast.revision);
        test.store().record_outcomes(&[(claim, outcome)]).await.unwrap();
        test.hs.sent_to(&room).into_iter().find(|sent| sent.event_id == event).unwrap()
    }

    /// What the bot sent into `room` after `event` (edits, poll ends), by type.
    fn later(test: &TestBroadcasts, room: &RoomId, event_type: &str) -> Vec<serde_json::Value> {
        test.hs
            .sent_to(room)
            .into_iter()
            .filter(|sent| sent.event_type == event_type)
            .map(|sent| sent.content)
            .collect()
    }

    fn people(test: &TestBroadcasts) -> Vec<OwnedUserId> {
        vec![test.hs.user("alice", Some("Alice")), test.hs.user("bob", Some("Bob"))]
    }

    #[tokio::test]
    async fn an_edit_replaces_every_delivered_copy_once_even_one_sent_with_the_old_text_meanwhile() {
        let test = TestBroadcasts::new().await;
        let control = test.control_room().await;
        let id = test
            .running_broadcast(&control, "Hi {displayname}", &people(&test), SendOptions::default())
            .await;
        let alices = deliver_next(&test, None).await;
        assert_eq!(alices.content["body"], "Hi Alice");
        let before_the_edit = test.store().broadcast(id).await.unwrap();

        let revision =
            test.store().edit_broadcast(id, &StoredMessage::markdown("Bye **{displayname}**")).await;
        assert_eq!(revision.unwrap(), 1);
        // A worker that read the broadcast before the edit sends Bob the old text.
        let bobs = deliver_next(&test, Some(&before_the_edit)).await;
        assert_eq!(bobs.content["body"], "Hi Bob");
        round(&test.broadcasts).await.unwrap();
        for (copy, name) in [(&alices, "Alice"), (&bobs, "Bob")] {
            let edits = later(&test, &copy.room, "m.room.message");
            let edit = edits.iter().find(|content| content.get("m.new_content").is_some()).expect("an edit");
            assert_eq!(edit["m.new_content"]["body"], format!("Bye **{name}**"));
            assert_eq!(edit["m.new_content"]["formatted_body"], format!("Bye <strong>{name}</strong>"));
            assert_eq!(edit["m.relates_to"], json!({ "rel_type": "m.replace", "event_id": copy.event_id }));
        }
        let sends = test.hs.count("send_raw");
        round(&test.broadcasts).await.unwrap();
        round(&test.broadcasts).await.unwrap();
        assert_eq!(test.hs.count("send_raw"), sends + 1, "no copy is edited twice; one summary");
        assert_eq!(
            test.hs.bodies_in(&control).last().unwrap(),
            &format!("Edited {id} «Hi {{displayname}}»: 2 copies show the new text.")
        );
    }

    /// A follow-up the homeserver refuses for now is tried again a round later, not at once; one
    /// that meets an outage uses up no try.
    #[tokio::test]
    async fn follow_ups_failing_for_now_wait_for_the_next_round() {
        let test = TestBroadcasts::new().await;
        let control = test.control_room().await;
        let id = test.running_broadcast(&control, "Hi", &people(&test)[..1], SendOptions::default()).await;
        let copy = deliver_next(&test, None).await;
        test.store().edit_broadcast(id, &StoredMessage::markdown("Hello")).await.unwrap();
        let busy = MatrixError::Transient { retry_after: None, message: "too many requests".into() };
        test.hs.fail_next("send_raw", busy);
        assert!(
            !round(&test.broadcasts).await.unwrap(),
            "nothing changed: the task waits before the next round"
        );
        assert_eq!(test.store().followups(id, 10).await.unwrap()[0].attempts, 1);
        test.hs.with(|state| state.down = true);
        assert!(!round(&test.broadcasts).await.unwrap());
        assert_eq!(test.store().followups(id, 10).await.unwrap()[0].attempts, 1, "an outage counts no try");
        test.hs.with(|state| state.down = false);
        assert!(round(&test.broadcasts).await.unwrap(), "edited");
        assert_eq!(later(&test, &copy.room, "m.room.message").len(), 2, "the copy and one edit");
        assert!(test.store().followups(id, 10).await.unwrap().is_empty());
    }

    /// The copies of a persona's broadcast are the persona's: it edits and retracts them.
    #[tokio::test]
    async fn a_personas_copies_are_edited_and_retracted_by_the_persona() {
        let test = TestBroadcasts::with_config(
            "personas:\n  hr: { username: broadcast_hr, displayname: HR Team, avatar: \"\" }\n",
        )
        .await;
        let control = test.control_room().await;
        let options = SendOptions { persona: Some("hr".into()), ..SendOptions::default() };
        let id = test.running_broadcast(&control, "Hi", &people(&test)[..1], options).await;
        let copy = deliver_next(&test, None).await;
        let hr: OwnedUserId = "@broadcast_hr:example.org".try_into().unwrap();
        assert_eq!(copy.sender, hr);
        test.store().edit_broadcast(id, &StoredMessage::markdown("Hello")).await.unwrap();
        round(&test.broadcasts).await.unwrap();
        let edits = test.hs.sent_to(&copy.room);
        let edit = edits.iter().find(|sent| sent.content.get("m.new_content").is_some()).expect("an edit");
        assert_eq!((&edit.sender, &edit.content["m.new_content"]["body"]), (&hr, &json!("Hello")));
        test.store().retract_broadcast(id, None).await.unwrap();
        round(&test.broadcasts).await.unwrap();
        assert_eq!(
            test.hs.with(|state| state.redacted.clone()),
            [copy.event_id],
            "the bot is not in HR's DM"
        );
        assert!(test.store().failed_followups(id, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_retraction_removes_every_copy_and_names_the_ones_that_failed() {
        let test = TestBroadcasts::new().await;
        let control = test.control_room().await;
        let mut users = people(&test);
        users.push(test.hs.user("carol", None));
        let id = test.running_broadcast(&control, "Oops", &users, SendOptions::default()).await;
        let (alices, bobs) = (deliver_next(&test, None).await, deliver_next(&test, None).await);
        assert_eq!(test.store().cancel_deliveries(id).await.unwrap(), 1, "carol's is not delivered yet");
        assert!(test.store().retract_broadcast(id, Some("sent by mistake")).await.unwrap());
        assert!(!test.store().retract_broadcast(id, None).await.unwrap(), "once");
        test.hs.fail_next("redact", forbidden("not yours"));
        round(&test.broadcasts).await.unwrap();
        round(&test.broadcasts).await.unwrap();
        let redacted = test.hs.with(|state| state.redacted.clone());
        assert_eq!(redacted.len(), 1, "{redacted:?}");
        assert!(redacted.contains(&alices.event_id) || redacted.contains(&bobs.event_id));
        assert_eq!(
            test.hs.bodies_in(&control).last().unwrap(),
            &format!("Retracted {id} «Oops»: 1 copy removed, 1 failed (reasons: `!bc status {id}`).")
        );
        let failed = test.store().failed_followups(id, 10).await.unwrap();
        assert_eq!(failed.len(), 1);
        assert!(failed[0].1.contains("not yours"), "{failed:?}");
    }

    #[tokio::test]
    async fn closing_a_poll_ends_it_in_every_dm_with_the_top_answer() {
        let ended = "The poll has ended. Top answer: Salad";
        close_a_poll("", ended, |id| format!("Closed the poll {id} «Lunch»: ended in 2 DMs.")).await;
    }

    #[tokio::test]
    async fn a_german_bot_ends_a_poll_and_reports_in_german() {
        let ended = "Die Umfrage ist beendet. Häufigste Antwort: Salad";
        let summary = |id| format!("Umfrage {id} «Lunch» geschlossen: in 2 Direktnachrichten beendet.");
        close_a_poll("language: de\n", ended, summary).await;
    }

    #[test]
    fn follow_up_summaries_choose_the_plural_form() {
        let de = crate::base::i18n::Language::De;
        let retracted =
            |count: i64| crate::base::i18n::t!(de, "followup-retracted", titled = "#3 «Oops»", count = count);
        assert_eq!(retracted(1), "#3 «Oops» zurückgezogen: 1 Kopie entfernt");
        assert_eq!(retracted(1_000), "#3 «Oops» zurückgezogen: 1.000 Kopien entfernt");
        let edited =
            |count: i64| crate::base::i18n::t!(de, "followup-edited", titled = "#3 «Oops»", count = count);
        assert_eq!(edited(1), "#3 «Oops» bearbeitet: 1 Kopie zeigt den neuen Text");
        assert_eq!(edited(2), "#3 «Oops» bearbeitet: 2 Kopien zeigen den neuen Text");
        let en = crate::base::i18n::Language::En;
        let edited =
            |count: i64| crate::base::i18n::t!(en, "followup-edited", titled = "#3 «Oops»", count = count);
        assert_eq!(edited(1_200), "Edited #3 «Oops»: 1,200 copies show the new text");
    }

    /// Issue 22, item 9: a DM retired for gaining a third member gets no edit and no poll end
    /// (the summary counts it skipped); a retraction still takes the copy away.
    #[tokio::test]
    async fn edits_and_poll_ends_skip_a_dm_that_gained_a_third_member() {
        let test = TestBroadcasts::new().await;
        let control = test.control_room().await;
        let id = test.running_broadcast(&control, "Hi", &people(&test), SendOptions::default()).await;
        let (kept, retired) = (deliver_next(&test, None).await, deliver_next(&test, None).await);
        test.store().retire_dm(&retired.room).await.unwrap();
        test.store().edit_broadcast(id, &StoredMessage::markdown("Bye")).await.unwrap();
        round(&test.broadcasts).await.unwrap();
        round(&test.broadcasts).await.unwrap();
        let edits = |room| later(&test, room, "m.room.message").len();
        assert_eq!(
            (edits(&kept.room), edits(&retired.room)),
            (2, 1),
            "the copy, and an edit where it is private"
        );
        assert_eq!(
            test.hs.bodies_in(&control).last().unwrap(),
            &format!(
                "Edited {id} «Hi»: 1 copy shows the new text, 1 skipped (their DM gained a third member)."
            )
        );
        test.store().retract_broadcast(id, None).await.unwrap();
        round(&test.broadcasts).await.unwrap();
        round(&test.broadcasts).await.unwrap();
        let redacted = test.hs.with(|state| state.redacted.clone());
        assert!(redacted.contains(&kept.event_id) && redacted.contains(&retired.event_id), "{redacted:?}");

        let poll = running_poll(&test, &control).await;
        let (kept, retired) = (deliver_next(&test, None).await, deliver_next(&test, None).await);
        test.store().retire_dm(&retired.room).await.unwrap();
        assert!(test.store().close_poll(poll).await.unwrap());
        round(&test.broadcasts).await.unwrap();
        round(&test.broadcasts).await.unwrap();
        let ends = |room| later(&test, room, "org.matrix.msc3381.poll.end").len();
        assert_eq!((ends(&kept.room), ends(&retired.room)), (1, 0));
        assert_eq!(
            test.hs.bodies_in(&control).last().unwrap(),
            &format!(
                "Closed the poll {poll} «Lunch»: ended in 1 DM, 1 skipped (their DM gained a third member)."
            )
        );
    }

    /// A running poll broadcast «Lunch» from `control` to [`people`].
    async fn running_poll(test: &TestBroadcasts, control: &RoomId) -> BroadcastId {
        let admin: OwnedUserId = "@admin:example.org".try_into().unwrap();
        let new = NewBroadcast {
            name: "Lunch",
            control_room_id: control,
            created_by: &admin,
            message: &element_poll(1),
            state: crate::base::store::BroadcastState::Running,
            audience: &[],
            options: &SendOptions::default(),
            command_event_id: None,
        };
        let id = test.store().create_broadcast(new).await.unwrap();
        test.store().add_deliveries(id, &people(test)).await.unwrap();
        id
    }

    /// Closes a poll of two recipients under `config`: `ended` is the end's text in each DM,
    /// `summary` the control room's last message.
    async fn close_a_poll(config: &str, ended: &str, summary: impl Fn(BroadcastId) -> String) {
        let test = TestBroadcasts::with_config(config).await;
        let control = test.control_room().await;
        let id = running_poll(&test, &control).await;
        let users = people(&test);
        let copies = [deliver_next(&test, None).await, deliver_next(&test, None).await];
        assert_eq!(copies[0].event_type, "org.matrix.msc3381.poll.start");
        for (copy, user) in copies.iter().zip(&users) {
            let answer = json!({
                "type": "org.matrix.msc3381.poll.response", "room_id": copy.room, "sender": user,
                "origin_server_ts": crate::base::store::now_ms(),
                "content": { "m.relates_to": { "rel_type": "m.reference", "event_id": copy.event_id },
                             "org.matrix.msc3381.poll.response": { "answers": ["salad"] } },
            });
            crate::rooms::relay::on_poll_answer(test.store(), "org.matrix.msc3381.poll.response", &answer)
                .await;
        }
        assert!(test.store().close_poll(id).await.unwrap());
        round(&test.broadcasts).await.unwrap();
        round(&test.broadcasts).await.unwrap();
        for copy in &copies {
            let ends = later(&test, &copy.room, "org.matrix.msc3381.poll.end");
            assert_eq!(ends.len(), 1, "{ends:?}");
            assert_eq!(ends[0]["m.relates_to"]["event_id"], copy.event_id.as_str());
            assert_eq!(ends[0]["org.matrix.msc1767.text"], ended);
        }
        assert_eq!(test.hs.bodies_in(&control).last().unwrap(), &summary(id));
    }
}
