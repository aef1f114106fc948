//! `!bc list`, `!bc status <id>` and `!bc cancel <id>`: what happened to broadcasts.

use std::collections::BTreeMap;

use ruma::OwnedUserId;

use super::{find_broadcast, state_name, Answer, Context};
use crate::{
    base::{
        i18n::{t, Language},
        poll::Poll,
        store::{Broadcast, BroadcastId, BroadcastState, DeliveryCounts, DeliveryState, StoreError},
        when,
    },
    broadcasts::lifecycle,
    rooms::notices::{escape_markdown, titled},
};

/// How many broadcasts `list` shows, and how many failures `status` names.
const SHOWN: i64 = 10;

pub async fn list(ctx: &Context<'_>) -> Answer {
    let broadcasts = match ctx.broadcasts.rooms.store.recent_broadcasts(ctx.room, SHOWN).await {
        Ok(broadcasts) => broadcasts,
        Err(error) => return Answer::store_failed(error),
    };
    let language = ctx.language();
    if broadcasts.is_empty() {
        return Answer::ok(t!(language, "list-empty"));
    }
    let mut text = format!("{}\n\n", t!(language, "list-title"));
    for broadcast in broadcasts {
        let counts = match ctx.broadcasts.rooms.store.delivery_counts(broadcast.id).await {
            Ok(counts) => counts,
            Err(error) => return Answer::store_failed(error),
        };
        let line = t!(
            language,
            "list-line",
            broadcast = titled(&broadcast),
            state = state_text(ctx, &broadcast),
            delivered = counts.delivered,
            total = counts.total(),
            failed = counts.failed
        );
        text.push_str(&format!("{line}\n"));
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
            let state = state_text(ctx, &broadcast);
            let title = t!(ctx.language(), "status-title", broadcast = titled(&broadcast), state = state);
            Answer::ok(format!("{title}\n\n{details}"))
        }
        Err(error) => Answer::store_failed(error),
    }
}

/// A broadcast's state as `list` and `status` show it: when it is due, whether it was edited,
/// retracted, or its poll closed.
fn state_text(ctx: &Context<'_>, broadcast: &Broadcast) -> String {
    let language = ctx.language();
    let mut text = state_name(language, broadcast.state);
    if let (BroadcastState::Scheduled, Some(at)) = (broadcast.state, broadcast.options.send_at) {
        let time = when::show(at, &ctx.broadcasts.rooms.broadcast.time_zone());
        text = t!(language, "state-scheduled-for", state = text, time = time);
    }
    if broadcast.revision > 0 {
        text.push_str(&t!(language, "state-edited"));
    }
    if broadcast.poll_closed_at.is_some() {
        text.push_str(&t!(language, "state-poll-closed"));
    }
    if broadcast.retracted_at.is_some() {
        text.push_str(&t!(language, "state-retracted"));
    }
    text
}

/// The counts, a poll's tally, who replied, and who failed or was skipped, with reasons.
async fn status_text(ctx: &Context<'_>, broadcast: &Broadcast) -> Result<String, StoreError> {
    let (store, id, language) = (&ctx.broadcasts.rooms.store, broadcast.id, ctx.language());
    let counts = store.delivery_counts(id).await?;
    let mut text = count_lines(language, &counts);
    let (read, replied) = store.read_and_replied(id).await?;
    let line = |text: &mut String, line: String| text.push_str(&format!("{line}\n"));
    line(&mut text, t!(language, "status-read", count = read));
    line(&mut text, t!(language, "status-replied", count = replied));
    let encrypted = store.encrypted_dm_deliveries(id).await?;
    if ctx.broadcasts.rooms.crypto.is_some() {
        let waiting = store.deliveries_waiting(id, crate::base::e2ee::rooms::NO_DEVICE_YET).await?;
        line(&mut text, t!(language, "status-encrypted", count = encrypted));
        line(&mut text, t!(language, "status-no-device-yet", count = waiting));
    } else if encrypted > 0 {
        line(&mut text, t!(language, "status-unreadable-replies", count = encrypted));
    }
    let repliers = store.repliers(id, SHOWN).await?;
    if !repliers.is_empty() {
        let names: Vec<String> = repliers.iter().map(|user| format!("`{user}`")).collect();
        text.push_str(&format!("\n{}\n", t!(language, "status-repliers", names = names.join(", "))));
    }
    for (state, title) in [
        (DeliveryState::Failed, t!(language, "status-failed-title")),
        (DeliveryState::Skipped, t!(language, "status-skipped-title")),
    ] {
        let rows = store.deliveries_with_reason(id, state, SHOWN).await?;
        reasons(&mut text, &title, rows);
    }
    let title = t!(language, "status-followups-title");
    reasons(&mut text, &title, store.failed_followups(id, SHOWN).await?);
    if let Some(poll) = Poll::of(&broadcast.message) {
        let tally = poll.tally(&store.poll_answers(id).await?);
        let tally = poll.tally_text(&tally, counts.delivered);
        text.push_str(&format!("\n{}\n", t!(language, "status-poll", tally = tally)));
    }
    Ok(text)
}

/// Appends `title` and a line per (user, reason), when there are any.
fn reasons(text: &mut String, title: &str, rows: Vec<(OwnedUserId, String)>) {
    if !rows.is_empty() {
        text.push_str(&format!("\n{title}:\n"));
        for (user, reason) in rows {
            text.push_str(&format!("- `{user}`: {}\n", escape_markdown(&reason)));
        }
    }
}

fn count_lines(language: Language, counts: &DeliveryCounts) -> String {
    let mut lines = vec![
        t!(language, "status-delivered", count = counts.delivered),
        t!(language, "status-pending", count = counts.unfinished()),
        t!(language, "status-failed", count = counts.failed),
        t!(language, "status-skipped", count = counts.skipped),
    ];
    if counts.cancelled > 0 {
        lines.push(t!(language, "status-cancelled", count = counts.cancelled));
    }
    lines.into_iter().map(|line| format!("{line}\n")).collect()
}

pub async fn cancel(ctx: &Context<'_>, id: BroadcastId) -> Answer {
    let (store, language) = (&ctx.broadcasts.rooms.store, ctx.language());
    let broadcast = match find_broadcast(ctx, id).await {
        Ok(broadcast) => broadcast,
        Err(answer) => return answer,
    };
    if let Err(refused) = lifecycle::may_manage(ctx.broadcasts, &broadcast, ctx.sender, ctx.level).await {
        return refused;
    }
    let cancelled = match broadcast.state {
        state if state.is_stoppable() => {
            store.transition(id, broadcast.state, BroadcastState::Cancelled).await
        }
        state => {
            let state = state_name(language, state);
            return Answer::error(t!(language, "cancel-nothing", id = id.to_string(), state = state));
        }
    };
    match cancelled {
        Ok(true) => match store.cancel_deliveries(id).await {
            Ok(count) => {
                Answer::ok(t!(language, "cancel-done", broadcast = titled(&broadcast), count = count as i64))
            }
            Err(error) => Answer::store_failed(error),
        },
        Ok(false) => Answer::error(t!(language, "cancel-changed-meanwhile", id = id.to_string())),
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
    let store = &ctx.broadcasts.rooms.store;
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
    let language = ctx.language();
    if scopes.is_empty() {
        return Ok(t!(language, "defaults-none"));
    }
    let mut text = format!("{}\n\n", t!(language, "defaults-title"));
    for (id, (scopes, active)) in scopes {
        let broadcast = store.broadcast(id).await?;
        let counts = store.delivery_counts(id).await?;
        let line = t!(
            language,
            "defaults-line",
            broadcast = titled(&broadcast),
            scopes = scopes.join(", "),
            active = if active { "yes" } else { "no" },
            count = counts.delivered
        );
        text.push_str(&format!("{line}\n"));
    }
    Ok(text)
}

pub async fn switch_default(ctx: &Context<'_>, id: BroadcastId, on: bool) -> Answer {
    let (language, id_text) = (ctx.language(), id.to_string());
    let broadcast = match find_broadcast(ctx, id).await {
        Err(answer) => return answer,
        Ok(broadcast) if on && broadcast.retracted_at.is_some() => {
            return Answer::error(t!(language, "default-retracted", id = id_text))
        }
        Ok(broadcast) => broadcast,
    };
    if let Err(refused) = lifecycle::may_manage(ctx.broadcasts, &broadcast, ctx.sender, ctx.level).await {
        return refused;
    }
    match ctx.broadcasts.rooms.store.set_default_active(id, on).await {
        Ok(true) if on => Answer::ok(t!(language, "default-on", id = id_text)),
        Ok(true) => Answer::ok(t!(language, "default-off", id = id_text)),
        Ok(false) => Answer::error(t!(language, "default-not-a-default", id = id_text)),
        Err(error) => Answer::store_failed(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::testing::TestApp;

    /// Issue 22, item 14: a reason a homeserver gave (which can come from a remote server) shows
    /// as written in `!bc status`, never as Markdown: no link, no HTML, no ping.
    #[tokio::test]
    async fn a_homeserver_reason_shows_as_written_in_status() {
        let test = TestApp::new().await;
        let control = test.control_room().await;
        let alice = test.hs.user("alice", None);
        let id = test.running_broadcast(&control, "News", &[], Default::default()).await;
        let said = "refused ([click](https://evil.example) <b>@room</b>)";
        test.store().add_failed_deliveries(id, &[alice], said).await.unwrap();
        let admin: ruma::OwnedUserId = "@admin:example.org".try_into().unwrap();
        let ctx = Context {
            broadcasts: &test.broadcasts,
            room: &control,
            event_id: ruma::event_id!("$status"),
            sender: &admin,
            level: test.broadcasts.rooms.permissions.level(&admin),
            body: "",
            reply_to: None,
        };
        let answer = status(&ctx, id).await;
        let line = answer.markdown.lines().find(|line| line.contains("evil")).expect(&answer.markdown);
        assert_eq!(
            line,
            r"- `@alice:example.org`: refused \(\[click\]\(https://evil.example\) \<b\>@room\</b\>\)"
        );
        let html =
            crate::base::message::StoredMessage::markdown(&answer.markdown).content["formatted_body"].clone();
        assert!(!html.to_string().contains("<a ") && !html.to_string().contains("<b>"), "{html}");
    }
}
