//! After sending: `!bc edit`, `!bc redact` and `!bc poll close`. Each checks who may do it, then
//! marks the broadcast in the store; the [follow-up task](crate::followup) changes the
//! delivered copies and reports when every copy is done.

use super::{find_broadcast, markdown_message, Answer, Context};
use crate::{
    lifecycle,
    notices::{counted, thousands, titled},
    poll::Poll,
    store::{Broadcast, BroadcastId, BroadcastState, DeliveryCounts},
};

/// The broadcast `id` if the sender may manage it: its creator, or someone who may address its
/// whole audience (admins may name one of another control room); else the refusal.
async fn managed(ctx: &Context<'_>, id: BroadcastId) -> Result<(Broadcast, DeliveryCounts), Answer> {
    let broadcast = find_broadcast(ctx, id).await?;
    lifecycle::may_manage(ctx.app, &broadcast, ctx.sender, ctx.level).await?;
    if broadcast.retracted_at.is_some() {
        return Err(Answer::error(format!(
            "{} was retracted; nothing is left to change.",
            titled(&broadcast)
        )));
    }
    let counts = ctx.app.store.delivery_counts(id).await.map_err(Answer::store_failed)?;
    Ok((broadcast, counts))
}

/// `!bc edit <id>` with the new text on the following lines.
pub async fn edit(ctx: &Context<'_>, id: BroadcastId, dry_run: bool) -> Answer {
    let (broadcast, counts) = match managed(ctx, id).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    if !broadcast.message.is_text() {
        return Answer::error(format!(
            "{} is {}: only text broadcasts can be edited. `{} redact {id}` retracts it.",
            titled(&broadcast),
            broadcast.message.summary(),
            ctx.app.config.broadcast.command_prefix
        ));
    }
    if ctx.body.trim().is_empty() {
        return Answer::error(format!(
            "What is the new text? Write it on the lines after the command:\n```\n{} edit {id}\nThe new text …\n```",
            ctx.app.config.broadcast.command_prefix
        ));
    }
    let message = match markdown_message(ctx.body) {
        Ok(message) => message,
        Err(too_long) => return too_long,
    };
    let delivered = counted(counts.delivered, "delivered copy", "delivered copies");
    let waiting = thousands(counts.unfinished());
    if dry_run {
        return Answer::ok(format!(
            "Dry run, nothing changed: {delivered} of {} would be edited; {waiting} not yet delivered would \
             get the new text.",
            titled(&broadcast)
        ));
    }
    if let Err(error) = ctx.app.store.edit_broadcast(id, &message).await {
        return Answer::store_failed(error);
    }
    let mut text = format!(
        "Editing {delivered} of {}; {waiting} not yet delivered get the new text.",
        titled(&broadcast)
    );
    if broadcast.options.default {
        text.push_str(" People who join later get the new text.");
    }
    text.push_str(" I say here when every copy is edited.");
    Answer::ok(text)
}

/// `!bc redact <id> [reason]`: retracts every delivered copy, cancels the rest, and stops a
/// default from welcoming anyone else.
pub async fn redact(ctx: &Context<'_>, id: BroadcastId, reason: &[String], dry_run: bool) -> Answer {
    let (broadcast, counts) = match managed(ctx, id).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let delivered = counted(counts.delivered, "delivered copy", "delivered copies");
    let waiting = thousands(counts.unfinished());
    if dry_run {
        return Answer::ok(format!(
            "Dry run, nothing changed: {delivered} of {} would be retracted and {waiting} not yet delivered \
             cancelled.",
            titled(&broadcast)
        ));
    }
    let store = &ctx.app.store;
    if matches!(
        broadcast.state,
        BroadcastState::Running | BroadcastState::Prepared | BroadcastState::Scheduled
    ) {
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
        Ok::<_, crate::store::StoreError>((cancelled, was_default))
    };
    let (cancelled, was_default) = match cancelled.await {
        Ok(done) => done,
        Err(error) => return Answer::store_failed(error),
    };
    let mut text = format!(
        "Retracting {delivered} of {}; {} not yet delivered were cancelled.",
        titled(&broadcast),
        thousands(cancelled as i64)
    );
    if was_default {
        text.push_str(" It no longer welcomes people who join.");
    }
    text.push_str(" I say here when every copy is retracted.");
    Answer::ok(text)
}

/// `!bc poll close <id>`: ends the poll in every DM and shows the final tally.
pub async fn close_poll(ctx: &Context<'_>, id: BroadcastId, dry_run: bool) -> Answer {
    let (broadcast, counts) = match managed(ctx, id).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Some(poll) = Poll::of(&broadcast.message) else {
        return Answer::error(format!("{} is not a poll.", titled(&broadcast)));
    };
    if broadcast.poll_closed_at.is_some() {
        return Answer::error(format!("The poll {} is closed already.", titled(&broadcast)));
    }
    let delivered = counted(counts.delivered, "DM", "DMs");
    if dry_run {
        return Answer::ok(format!(
            "Dry run, nothing changed: the poll {} would be ended in {delivered}.",
            titled(&broadcast)
        ));
    }
    let store = &ctx.app.store;
    let answers = async {
        store.close_poll(id).await?;
        store.poll_answers(id).await
    };
    match answers.await {
        Ok(answers) => Answer::ok(format!(
            "Closed the poll {}; ending it in {delivered}. Answers from now on do not count.\n\n**Final \
             tally**: {}",
            titled(&broadcast),
            poll.tally_text(&poll.tally(&answers), counts.delivered)
        )),
        Err(error) => Answer::store_failed(error),
    }
}
