//! After sending: `!bc edit`, `!bc redact` and `!bc poll close`. Each checks who may do it, then
//! marks the broadcast in the store; the [follow-up task](crate::broadcasts::followup) changes the
//! delivered copies and reports when every copy is done.

use super::{find_broadcast, markdown_message, Answer, Context};
use crate::{
    base::{
        i18n::{t, Language},
        poll::Poll,
        store::{Broadcast, BroadcastId, BroadcastState, DeliveryCounts},
    },
    broadcasts::lifecycle,
    rooms::notices::titled,
};

/// "1 delivered copy", "1,200 delivered copies".
fn delivered_copies(language: Language, counts: &DeliveryCounts) -> String {
    t!(language, "after-delivered-copies", count = counts.delivered)
}

/// The broadcast `id` if the sender may manage it: its creator, or someone who may address its
/// whole audience (admins may name one of another control room); else the refusal.
async fn managed(ctx: &Context<'_>, id: BroadcastId) -> Result<(Broadcast, DeliveryCounts), Answer> {
    let broadcast = find_broadcast(ctx, id).await?;
    lifecycle::may_manage(ctx.broadcasts, &broadcast, ctx.sender, ctx.level).await?;
    if broadcast.retracted_at.is_some() {
        return Err(Answer::error(t!(ctx.language(), "after-retracted", broadcast = titled(&broadcast))));
    }
    let counts = ctx.broadcasts.rooms.store.delivery_counts(id).await.map_err(Answer::store_failed)?;
    Ok((broadcast, counts))
}

/// `!bc edit <id>` with the new text on the following lines.
pub async fn edit(ctx: &Context<'_>, id: BroadcastId, dry_run: bool) -> Answer {
    let (broadcast, counts) = match managed(ctx, id).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let (language, prefix) = (ctx.language(), &ctx.broadcasts.rooms.broadcast.command_prefix);
    if !broadcast.message.is_text() {
        return Answer::error(t!(
            language,
            "after-not-text",
            broadcast = titled(&broadcast),
            kind = broadcast.message.summary(),
            prefix = prefix,
            id = id.to_string()
        ));
    }
    if ctx.body.trim().is_empty() {
        return Answer::error(t!(language, "after-what-new-text", prefix = prefix, id = id.to_string()));
    }
    let message = match markdown_message(language, ctx.body) {
        Ok(message) => message,
        Err(too_long) => return too_long,
    };
    let delivered = delivered_copies(language, &counts);
    let (waiting, title) = (counts.unfinished(), titled(&broadcast));
    if dry_run {
        return Answer::ok(t!(
            language,
            "after-edit-dry-run",
            delivered = delivered,
            broadcast = title,
            waiting = waiting
        ));
    }
    if let Err(error) = ctx.broadcasts.rooms.store.edit_broadcast(id, &message).await {
        return Answer::store_failed(error);
    }
    let mut text = t!(language, "after-editing", delivered = delivered, broadcast = title, waiting = waiting);
    if broadcast.options.default {
        text.push_str(&format!(" {}", t!(language, "after-editing-default")));
    }
    text.push_str(&format!(" {}", t!(language, "after-editing-report")));
    Answer::ok(text)
}

/// `!bc redact <id> [reason]`: retracts every delivered copy, cancels the rest, and stops a
/// default from welcoming anyone else.
pub async fn redact(ctx: &Context<'_>, id: BroadcastId, reason: &[String], dry_run: bool) -> Answer {
    let (broadcast, counts) = match managed(ctx, id).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let language = ctx.language();
    let delivered = delivered_copies(language, &counts);
    let (waiting, title) = (counts.unfinished(), titled(&broadcast));
    if dry_run {
        return Answer::ok(t!(
            language,
            "after-redact-dry-run",
            delivered = delivered.clone(),
            broadcast = title.clone(),
            waiting = waiting
        ));
    }
    let store = &ctx.broadcasts.rooms.store;
    if broadcast.state.is_stoppable() {
        if let Err(error) = store.transition(id, broadcast.state, BroadcastState::Cancelled).await {
            return Answer::store_failed(error);
        }
    }
    let reason = reason.join(" ");
    let reason = Some(reason.trim()).filter(|reason| !reason.is_empty());
    let cancelled = async {
        let cancelled = store.cancel_deliveries(id).await?;
        store.retract_broadcast(id, reason).await?;
        let was_default = store.set_default_active(id, false).await?;
        Ok::<_, crate::base::store::StoreError>((cancelled, was_default))
    };
    let (cancelled, was_default) = match cancelled.await {
        Ok(done) => done,
        Err(error) => return Answer::store_failed(error),
    };
    let cancelled = cancelled as i64;
    let mut text =
        t!(language, "after-retracting", delivered = delivered, broadcast = title, cancelled = cancelled);
    if was_default {
        text.push_str(&format!(" {}", t!(language, "after-retracting-default")));
    }
    text.push_str(&format!(" {}", t!(language, "after-retracting-report")));
    Answer::ok(text)
}

/// `!bc poll close <id>`: ends the poll in every DM and shows the final tally.
pub async fn close_poll(ctx: &Context<'_>, id: BroadcastId, dry_run: bool) -> Answer {
    let (broadcast, counts) = match managed(ctx, id).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let (language, title) = (ctx.language(), titled(&broadcast));
    let Some(poll) = Poll::of(&broadcast.message) else {
        return Answer::error(t!(language, "after-not-a-poll", broadcast = title));
    };
    if broadcast.poll_closed_at.is_some() {
        return Answer::error(t!(language, "after-poll-closed-already", broadcast = title));
    }
    let dms = t!(language, "after-dms", count = counts.delivered);
    if dry_run {
        return Answer::ok(t!(language, "after-close-dry-run", broadcast = title, dms = dms));
    }
    let store = &ctx.broadcasts.rooms.store;
    let answers = async {
        store.close_poll(id).await?;
        store.poll_answers(id).await
    };
    match answers.await {
        Ok(answers) => Answer::ok(t!(
            language,
            "after-closed",
            broadcast = title,
            dms = dms,
            tally = poll.tally_text(&poll.tally(&answers), counts.delivered)
        )),
        Err(error) => Answer::store_failed(error),
    }
}
