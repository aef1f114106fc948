//! `!bc list`, `!bc status <id>` and `!bc cancel <id>`: what happened to broadcasts.

use std::collections::BTreeMap;

use ruma::OwnedUserId;

use super::{find_broadcast, Answer, Context};
use crate::{
    notices::{thousands, titled},
    poll::Poll,
    store::{Broadcast, BroadcastId, BroadcastState, DeliveryCounts, DeliveryState, StoreError},
    when,
};

/// How many broadcasts `list` shows, and how many failures `status` names.
const SHOWN: i64 = 10;

pub async fn list(ctx: &Context<'_>) -> Answer {
    let broadcasts = match ctx.app.store.recent_broadcasts(ctx.room, SHOWN).await {
        Ok(broadcasts) => broadcasts,
        Err(error) => return Answer::store_failed(error),
    };
    if broadcasts.is_empty() {
        return Answer::ok("No broadcasts yet.");
    }
    let mut text = String::from("**Recent broadcasts**\n\n");
    for broadcast in broadcasts {
        let counts = match ctx.app.store.delivery_counts(broadcast.id).await {
            Ok(counts) => counts,
            Err(error) => return Answer::store_failed(error),
        };
        text.push_str(&format!(
            "- {} — {} — {} / {} delivered, {} failed\n",
            titled(&broadcast),
            state_text(ctx, &broadcast),
            thousands(counts.delivered),
            thousands(counts.total()),
            thousands(counts.failed)
        ));
    }
    Answer::ok(text)
}

pub async fn status(ctx: &Context<'_>, id: BroadcastId) -> Answer {
    let broadcast = match find_broadcast(ctx, id).await {
        Ok(broadcast) => broadcast,
        Err(answer) => return answer,
    };
    match status_text(ctx, &broadcast).await {
        Ok(details) => {
            Answer::ok(format!("**{}** — {}\n\n{details}", titled(&broadcast), state_text(ctx, &broadcast)))
        }
        Err(error) => Answer::store_failed(error),
    }
}

/// A broadcast's state as `list` and `status` show it: when it is due, whether it was edited,
/// retracted, or its poll closed.
fn state_text(ctx: &Context<'_>, broadcast: &Broadcast) -> String {
    let mut text = broadcast.state.as_str().to_owned();
    if let (BroadcastState::Scheduled, Some(at)) = (broadcast.state, broadcast.options.send_at) {
        text.push_str(&format!(" for {}", when::show(at, &ctx.app.config.broadcast.time_zone())));
    }
    if broadcast.revision > 0 {
        text.push_str(", edited");
    }
    if broadcast.poll_closed_at.is_some() {
        text.push_str(", poll closed");
    }
    if broadcast.retracted_at.is_some() {
        text.push_str(", retracted");
    }
    text
}

/// The counts, a poll's tally, who replied, and who failed or was skipped, with reasons.
async fn status_text(ctx: &Context<'_>, broadcast: &Broadcast) -> Result<String, StoreError> {
    let (store, id) = (&ctx.app.store, broadcast.id);
    let counts = store.delivery_counts(id).await?;
    let mut text = count_lines(&counts);
    let (read, replied) = store.read_and_replied(id).await?;
    text.push_str(&format!("- read: {}\n- replied: {}\n", thousands(read), thousands(replied)));
    let encrypted = store.encrypted_dm_deliveries(id).await?;
    if ctx.app.crypto.is_some() {
        let waiting = store.deliveries_waiting(id, crate::e2ee::rooms::NO_DEVICE_YET).await?;
        text.push_str(&format!("- encrypted end to end: {}\n", thousands(encrypted)));
        text.push_str(&format!(
            "- cannot decrypt yet (no device to share the key with): {}\n",
            thousands(waiting)
        ));
    } else if encrypted > 0 {
        text.push_str(&format!("- DM is encrypted, replies cannot be read: {}\n", thousands(encrypted)));
    }
    let repliers = store.repliers(id, SHOWN).await?;
    if !repliers.is_empty() {
        let names: Vec<String> = repliers.iter().map(|user| format!("`{user}`")).collect();
        text.push_str(&format!("\nReplied: {}\n", names.join(", ")));
    }
    for (state, title) in [(DeliveryState::Failed, "Failed"), (DeliveryState::Skipped, "Skipped")] {
        let rows = store.deliveries_with_reason(id, state, SHOWN).await?;
        reasons(&mut text, title, rows);
    }
    let title = "Copies that could not be changed (edit, retraction or poll end)";
    reasons(&mut text, title, store.failed_followups(id, SHOWN).await?);
    if let Some(poll) = Poll::of(&broadcast.message) {
        let tally = poll.tally(&store.poll_answers(id).await?);
        text.push_str(&format!("\n**Poll**: {}\n", poll.tally_text(&tally, counts.delivered)));
    }
    Ok(text)
}

/// Appends `title` and a line per (user, reason), when there are any.
fn reasons(text: &mut String, title: &str, rows: Vec<(OwnedUserId, String)>) {
    if !rows.is_empty() {
        text.push_str(&format!("\n{title}:\n"));
        for (user, reason) in rows {
            text.push_str(&format!("- `{user}`: {reason}\n"));
        }
    }
}

fn count_lines(counts: &DeliveryCounts) -> String {
    let mut text = format!(
        "- delivered: {}\n- pending: {}\n- failed: {}\n- skipped: {}\n",
        thousands(counts.delivered),
        thousands(counts.unfinished()),
        thousands(counts.failed),
        thousands(counts.skipped),
    );
    if counts.cancelled > 0 {
        text.push_str(&format!("- cancelled: {}\n", thousands(counts.cancelled)));
    }
    text
}

pub async fn cancel(ctx: &Context<'_>, id: BroadcastId) -> Answer {
    let store = &ctx.app.store;
    let broadcast = match find_broadcast(ctx, id).await {
        Ok(broadcast) => broadcast,
        Err(answer) => return answer,
    };
    let cancelled = match broadcast.state {
        BroadcastState::Running | BroadcastState::Prepared | BroadcastState::Scheduled => {
            store.transition(id, broadcast.state, BroadcastState::Cancelled).await
        }
        state => return Answer::error(format!("{id} is {}: nothing to cancel.", state.as_str())),
    };
    match cancelled {
        Ok(true) => match store.cancel_deliveries(id).await {
            Ok(count) => Answer::ok(format!(
                "Cancelled {}: {} not delivered.",
                titled(&broadcast),
                thousands(count as i64)
            )),
            Err(error) => Answer::store_failed(error),
        },
        Ok(false) => Answer::error(format!("{id} changed state meanwhile; see `status`.")),
        Err(error) => Answer::store_failed(error),
    }
}

pub async fn defaults(ctx: &Context<'_>) -> Answer {
    match defaults_text(ctx).await {
        Ok(text) => Answer::ok(text),
        Err(error) => Answer::store_failed(error),
    }
}

async fn defaults_text(ctx: &Context<'_>) -> Result<String, StoreError> {
    let store = &ctx.app.store;
    let mut scopes: BTreeMap<BroadcastId, (Vec<String>, bool)> = BTreeMap::new();
    for default in store.all_defaults().await? {
        // This room's defaults only (an admin names any id, but lists per room like everyone).
        if store.broadcast(default.broadcast_id).await?.control_room_id != ctx.room {
            continue;
        }
        let entry = scopes.entry(default.broadcast_id).or_default();
        entry.0.push(format!("`{}`", default.scope));
        entry.1 |= default.active;
    }
    if scopes.is_empty() {
        return Ok("No default broadcasts. `send … --default` makes one.".into());
    }
    let mut text = String::from("**Default broadcasts** (new people get them once)\n\n");
    for (id, (scopes, active)) in scopes {
        let broadcast = store.broadcast(id).await?;
        let counts = store.delivery_counts(id).await?;
        text.push_str(&format!(
            "- {} — {} — {} — {} received it\n",
            titled(&broadcast),
            scopes.join(", "),
            if active { "on" } else { "off" },
            thousands(counts.delivered)
        ));
    }
    Ok(text)
}

pub async fn switch_default(ctx: &Context<'_>, id: BroadcastId, on: bool) -> Answer {
    match find_broadcast(ctx, id).await {
        Err(answer) => return answer,
        Ok(broadcast) if on && broadcast.retracted_at.is_some() => {
            return Answer::error(format!("{id} was retracted; it cannot welcome anyone again."))
        }
        Ok(_) => {}
    }
    match ctx.app.store.set_default_active(id, on).await {
        Ok(true) if on => Answer::ok(format!("{id} is a default again: people who join from now on get it.")),
        Ok(true) => Answer::ok(format!("{id} is no longer a default: nobody else will get it.")),
        Ok(false) => Answer::error(format!("{id} is not a default broadcast (see `defaults`).")),
        Err(error) => Answer::store_failed(error),
    }
}
