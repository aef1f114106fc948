//! `!bc list`, `!bc status <id>` and `!bc cancel <id>`: what happened to broadcasts.

use super::{store_failed, Answer, Context};
use crate::{
    delivery::progress::{thousands, Counts},
    store::{BroadcastId, BroadcastState, DeliveryState, StoreError},
};

/// How many broadcasts `list` shows, and how many failures `status` names.
const SHOWN: i64 = 10;

pub async fn list(ctx: &Context<'_>) -> Answer {
    let broadcasts = match ctx.app.store.recent_broadcasts(SHOWN).await {
        Ok(broadcasts) => broadcasts,
        Err(error) => return store_failed(error),
    };
    if broadcasts.is_empty() {
        return Answer::ok("No broadcasts yet.");
    }
    let mut text = String::from("**Recent broadcasts**\n\n");
    for broadcast in broadcasts {
        let counts = Counts::of(ctx.app, &broadcast).await.unwrap_or_default();
        text.push_str(&format!(
            "- {} «{}» — {} — {} / {} delivered, {} failed\n",
            broadcast.id,
            broadcast.name,
            broadcast.state.as_str(),
            thousands(counts.delivered),
            thousands(counts.total),
            thousands(counts.failed)
        ));
    }
    Answer::ok(text)
}

pub async fn status(ctx: &Context<'_>, id: BroadcastId) -> Answer {
    let broadcast = match ctx.app.store.broadcast(id).await {
        Ok(broadcast) => broadcast,
        Err(StoreError::NotFound) => return Answer::error(format!("There is no broadcast {id}.")),
        Err(error) => return store_failed(error),
    };
    let counts = match Counts::of(ctx.app, &broadcast).await {
        Ok(counts) => counts,
        Err(error) => return store_failed(error),
    };
    let mut text = format!(
        "**{id} «{}»** — {}\n\n- delivered: {}\n- pending: {}\n- failed: {}\n- skipped: {}\n",
        broadcast.name,
        broadcast.state.as_str(),
        thousands(counts.delivered),
        thousands(counts.unfinished),
        thousands(counts.failed),
        thousands(counts.skipped),
    );
    if counts.cancelled > 0 {
        text.push_str(&format!("- cancelled: {}\n", thousands(counts.cancelled)));
    }
    let (read, replied) = ctx.app.store.read_and_replied(id).await.unwrap_or_default();
    text.push_str(&format!("- read: {}\n- replied: {}\n", thousands(read), thousands(replied)));
    let repliers = ctx.app.store.repliers(id, SHOWN).await.unwrap_or_default();
    if !repliers.is_empty() {
        let names: Vec<String> = repliers.iter().map(|user| format!("`{user}`")).collect();
        text.push_str(&format!("\nReplied: {}\n", names.join(", ")));
    }
    for (state, title) in [(DeliveryState::Failed, "Failed"), (DeliveryState::Skipped, "Skipped")] {
        let rows = ctx.app.store.deliveries_with_reason(id, state, SHOWN).await.unwrap_or_default();
        if !rows.is_empty() {
            text.push_str(&format!("\n{title}:\n"));
            for (user, reason) in rows {
                text.push_str(&format!("- `{user}`: {reason}\n"));
            }
        }
    }
    Answer::ok(text)
}

pub async fn cancel(ctx: &Context<'_>, id: BroadcastId) -> Answer {
    let store = &ctx.app.store;
    let broadcast = match store.broadcast(id).await {
        Ok(broadcast) => broadcast,
        Err(StoreError::NotFound) => return Answer::error(format!("There is no broadcast {id}.")),
        Err(error) => return store_failed(error),
    };
    let cancelled = match broadcast.state {
        BroadcastState::Running | BroadcastState::Prepared => {
            store.transition(id, broadcast.state, BroadcastState::Cancelled).await
        }
        state => return Answer::error(format!("{id} is {}: nothing to cancel.", state.as_str())),
    };
    match cancelled {
        Ok(true) => match store.cancel_deliveries(id).await {
            Ok(count) => Answer::ok(format!(
                "Cancelled {id} «{}»: {} not delivered.",
                broadcast.name,
                thousands(count as i64)
            )),
            Err(error) => store_failed(error),
        },
        Ok(false) => Answer::error(format!("{id} changed state meanwhile; see `status`.")),
        Err(error) => store_failed(error),
    }
}

pub async fn defaults(ctx: &Context<'_>) -> Answer {
    let defaults = match ctx.app.store.all_defaults().await {
        Ok(defaults) => defaults,
        Err(error) => return store_failed(error),
    };
    if defaults.is_empty() {
        return Answer::ok("No default broadcasts. `send … --default` makes one.");
    }
    let mut text = String::from("**Default broadcasts** (new people get them once)\n\n");
    let mut shown = Vec::new();
    for default in &defaults {
        if shown.contains(&default.broadcast_id) {
            continue;
        }
        shown.push(default.broadcast_id);
        let Ok(broadcast) = ctx.app.store.broadcast(default.broadcast_id).await else { continue };
        let scopes: Vec<String> = defaults
            .iter()
            .filter(|other| other.broadcast_id == default.broadcast_id)
            .map(|other| format!("`{}`", other.scope))
            .collect();
        let counts = Counts::of(ctx.app, &broadcast).await.unwrap_or_default();
        text.push_str(&format!(
            "- {} «{}» — {} — {} — {} received it\n",
            broadcast.id,
            broadcast.name,
            scopes.join(", "),
            if default.active { "on" } else { "off" },
            thousands(counts.delivered)
        ));
    }
    Answer::ok(text)
}

pub async fn switch_default(ctx: &Context<'_>, id: BroadcastId, on: bool) -> Answer {
    match ctx.app.store.set_default_active(id, on).await {
        Ok(true) if on => Answer::ok(format!("{id} is a default again: people who join from now on get it.")),
        Ok(true) => Answer::ok(format!("{id} is no longer a default: nobody else will get it.")),
        Ok(false) => Answer::error(format!("{id} is not a default broadcast (see `defaults`).")),
        Err(error) => store_failed(error),
    }
}
