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
    context::App,
    delivery::personalise,
    matrix::{send_json, MatrixError},
    notices::{post_notice, thousands, titled},
    poll::{Poll, Tally},
    store::{Broadcast, BroadcastId, Followup, FollowupDone, StoreError},
};

/// How often broadcasts with follow-ups are looked at.
const INTERVAL: Duration = Duration::from_secs(1);
/// How many copies are read at once, and followed up at the same time.
const BATCH: i64 = 200;
const AT_ONCE: usize = 8;
/// How often a copy's follow-up is tried before it is recorded as failed.
const MAX_ATTEMPTS: i64 = 8;

/// Makes follow-ups every second until `stopped`.
pub async fn run(app: Arc<App>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        if let Err(error) = round(&app).await {
            tracing::error!(%error, "cannot follow up on delivered copies");
        }
    }
}

/// One batch of follow-ups for each broadcast that has some; a summary for each that has none
/// left.
pub async fn round(app: &App) -> Result<(), StoreError> {
    for id in app.store.broadcasts_with_followups().await? {
        let broadcast = app.store.broadcast(id).await?;
        let copies = app.store.followups(id, BATCH).await?;
        if copies.is_empty() {
            if app.store.close_followups_if_done(id).await? {
                report(app, &broadcast).await?;
            }
            continue;
        }
        let ending = match Poll::of(&broadcast.message) {
            Some(poll) if broadcast.poll_closed_at.is_some() => {
                let tally = poll.tally(&app.store.poll_answers(id).await?);
                Some((poll, tally))
            }
            _ => None,
        };
        let reason = app.store.retract_reason(id).await?;
        let (broadcast, ending, reason) = (&broadcast, ending.as_ref(), reason.as_deref());
        let outages: Vec<bool> = stream::iter(copies)
            .map(|copy| async move { follow_up(app, broadcast, &copy, ending, reason).await })
            .buffer_unordered(AT_ONCE)
            .collect::<Vec<Result<bool, StoreError>>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        if outages.contains(&true) {
            tracing::warn!(broadcast = %id, "the homeserver cannot be reached; follow-ups wait for it");
            return Ok(());
        }
    }
    Ok(())
}

/// Retracts, edits or ends the poll of one copy and records it; true when the homeserver could
/// not be reached (nothing recorded, tried again next round).
async fn follow_up(
    app: &App,
    broadcast: &Broadcast,
    copy: &Followup,
    ending: Option<&(Poll, Tally)>,
    reason: Option<&str>,
) -> Result<bool, StoreError> {
    let (done, result) = if broadcast.retracted_at.is_some() {
        let txn = txn("retract", broadcast.id, copy, 0);
        (FollowupDone::Retracted, app.hs().redact(&copy.room_id, &copy.event_id, &txn, reason).await)
    } else if copy.shown_revision < broadcast.revision {
        (FollowupDone::Edited { revision: broadcast.revision }, edit(app, broadcast, copy).await)
    } else if let Some((poll, tally)) = ending {
        let (event_type, content) = poll.end_event(&copy.event_id, tally);
        let txn = txn("poll-end", broadcast.id, copy, 0);
        let sent = send_json(app.hs(), &copy.room_id, &txn, event_type, &content).await;
        (FollowupDone::PollEnded, sent.map(|_| ()))
    } else {
        return Ok(false); // the broadcast changed since the copies were read
    };
    match result {
        Ok(()) => app.store.record_followup(copy, done, None).await?,
        Err(error) if error.is_outage() => return Ok(true),
        Err(error @ MatrixError::Permanent { .. }) => {
            app.store.record_followup(copy, done, Some(&error.to_string())).await?
        }
        Err(error) if copy.attempts + 1 >= MAX_ATTEMPTS => {
            let reason = format!("gave up after {MAX_ATTEMPTS} tries: {error}");
            app.store.record_followup(copy, done, Some(&reason)).await?
        }
        Err(error) => {
            tracing::debug!(%error, user = %copy.user_id, "a follow-up will be tried again");
            app.store.retry_followup(copy).await?
        }
    }
    Ok(false)
}

/// Replaces a copy with the broadcast's current message, filled in for its recipient.
async fn edit(app: &App, broadcast: &Broadcast, copy: &Followup) -> Result<(), MatrixError> {
    let message = personalise(app.hs(), &broadcast.message, &copy.user_id, &copy.displayname).await?;
    let txn = txn("edit", broadcast.id, copy, broadcast.revision);
    send_json(app.hs(), &copy.room_id, &txn, &message.event_type, &message.replacing(&copy.event_id)).await?;
    Ok(())
}

/// The transaction ID of follow-up `kind` (of `revision`) of a copy.
fn txn(kind: &str, id: BroadcastId, copy: &Followup, revision: i64) -> OwnedTransactionId {
    OwnedTransactionId::from(format!("{kind}-{}-{revision}-{}", id.0, copy.user_id))
}

/// Tells the control room that every copy of a broadcast was followed up.
async fn report(app: &App, broadcast: &Broadcast) -> Result<(), StoreError> {
    let counts = app.store.followup_counts(broadcast.id).await?;
    let (done, failed) = (thousands(counts.done), thousands(counts.failed));
    let mut text = if broadcast.retracted_at.is_some() {
        format!("Retracted {}: {done} copies removed", titled(broadcast))
    } else if broadcast.poll_closed_at.is_some() {
        format!("Closed the poll {}: ended in {done} DMs", titled(broadcast))
    } else {
        format!("Edited {}: {done} copies show the new text", titled(broadcast))
    };
    if counts.failed > 0 {
        text.push_str(&format!(", {failed} failed (reasons: `!bc status {}`)", broadcast.id));
    }
    text.push('.');
    let kind = (broadcast.revision, broadcast.retracted_at.is_some(), broadcast.poll_closed_at.is_some());
    let txn =
        OwnedTransactionId::from(format!("followups-{}-{}-{}-{}", broadcast.id.0, kind.0, kind.1, kind.2));
    tracing::info!(broadcast = %broadcast.id, done = counts.done, failed = counts.failed, "follow-ups finished");
    post_notice(app.hs(), &broadcast.control_room_id, &txn, &text).await;
    Ok(())
}
