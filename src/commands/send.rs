//! `!bc send`, `!bc audience` and `!bc confirm`: prepare a broadcast, resolve its audience into
//! the queue, then preview it or start it.
//!
//! A broadcast is created once per command event (a command re-dispatched after a crash finds
//! its broadcast and carries on); resolving is idempotent because the queue is unique per
//! (broadcast, recipient).

use ruma::OwnedEventId;
use serde::{Deserialize, Serialize};

use super::{store_failed, Answer, Context};
use crate::{
    audience::{self, AudienceOptions, Target},
    delivery::{content::StoredMessage, progress},
    store::{Broadcast, BroadcastId, BroadcastState, NewBroadcast},
    App,
};

/// How many recipients a preview or dry run names.
const SAMPLE: i64 = 10;

/// What `!bc send` was asked, stored with the broadcast.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SendOptions {
    #[serde(flatten)]
    pub audience: AudienceOptions,
    #[serde(default)]
    pub yes: bool,
    #[serde(default)]
    pub dry_run: bool,
    /// Also a default broadcast: people who join later get it too.
    #[serde(default)]
    pub default: bool,
}

/// The words and switches of a `send` (or `audience`) command.
pub struct SendRequest {
    pub audience: Vec<String>,
    pub name: Option<String>,
    pub except: Vec<String>,
    pub recursive: bool,
    pub yes: bool,
    pub dry_run: bool,
    pub default: bool,
}

/// Checks and records the broadcast, then hands resolving its audience to a task that answers
/// the command when done (`None`: answered later), so that a large audience does not hold up
/// other commands.
pub async fn send(ctx: &Context<'_>, request: SendRequest) -> Option<Answer> {
    match prepare(ctx, request).await {
        Ok(Some(id)) => {
            tokio::spawn(resolve_and_answer(ctx.app.clone(), id));
            None
        }
        Ok(None) => None,
        Err(answer) => Some(answer),
    }
}

/// The broadcast to resolve, `None` when this command's broadcast exists already (re-dispatched
/// after a restart: its resolution was resumed at start-up), or the answer when it is refused.
async fn prepare(ctx: &Context<'_>, request: SendRequest) -> Result<Option<BroadcastId>, Answer> {
    let app = ctx.app;
    if let Ok(Some(existing)) = app.store.broadcast_by_command(ctx.event_id).await {
        tracing::info!(broadcast = %existing.id, "command seen again; its broadcast exists");
        return Ok(None);
    }
    let refuse = |error: audience::AudienceError| Answer::error(error.0);
    let targets = audience::parse_targets(&request.audience).map_err(refuse)?;
    let except = audience::parse_users(&request.except).map_err(refuse)?;
    audience::authorize(app, ctx.sender, ctx.level, &targets).await.map_err(refuse)?;
    let message = message(ctx, request.dry_run).await?;
    let name = request.name.clone().unwrap_or_else(|| default_name(&message));
    let options = SendOptions {
        audience: AudienceOptions { except, recursive: request.recursive },
        yes: request.yes,
        dry_run: request.dry_run,
        default: request.default,
    };
    let stored = NewBroadcast {
        name: &name,
        control_room_id: ctx.room,
        created_by: ctx.sender,
        content_json: &serde_json::to_string(&message).unwrap_or_default(),
        state: BroadcastState::Resolving,
        audience_json: &serde_json::to_string(&request.audience).unwrap_or_default(),
        options_json: &serde_json::to_string(&options).unwrap_or_default(),
        command_event_id: Some(ctx.event_id),
    };
    app.store.create_broadcast(stored).await.map(Some).map_err(store_failed)
}

/// Resolves a broadcast's audience and answers its command (the task [`send`] starts).
async fn resolve_and_answer(app: std::sync::Arc<App>, id: BroadcastId) {
    let broadcast = match app.store.broadcast(id).await {
        Ok(broadcast) => broadcast,
        Err(error) => {
            tracing::error!(%error, broadcast = %id, "cannot read a broadcast to resolve");
            return;
        }
    };
    let answer = finish_preparing(&app, &broadcast).await;
    if let Some(command) = &broadcast.command_event_id {
        crate::dispatch::answer_command(&app, &broadcast.control_room_id, command, &answer).await;
    }
}

/// Resumes resolving the broadcasts a stopped bot left half-prepared (at start-up).
pub async fn resume_preparing(app: &std::sync::Arc<App>) -> Result<(), crate::store::StoreError> {
    for broadcast in app.store.broadcasts_in_state(BroadcastState::Resolving).await? {
        tracing::info!(broadcast = %broadcast.id, "resuming the preparation of a broadcast");
        tokio::spawn(resolve_and_answer(app.clone(), broadcast.id));
    }
    Ok(())
}

/// The message of a `send`: the lines after the command, or the message the command replies to.
async fn message(ctx: &Context<'_>, dry_run: bool) -> Result<StoredMessage, Answer> {
    if !ctx.body.trim().is_empty() {
        return Ok(StoredMessage::markdown(ctx.body));
    }
    if let Some(replied) = &ctx.reply_to {
        let event = ctx.app.homeserver.room_event(ctx.room, replied).await.map_err(|error| {
            Answer::error(format!("I cannot read the message this command replies to: {error}"))
        })?;
        return StoredMessage::copy_of(&event).ok_or_else(|| {
            Answer::error("The message this command replies to has no content (was it deleted?).")
        });
    }
    if dry_run {
        return Ok(StoredMessage::markdown(""));
    }
    let prefix = &ctx.app.config.broadcast.command_prefix;
    Err(Answer::error(format!(
        "What should I send? Write the message on the lines after the command:\n```\n{prefix} send #team:example.org\n\
         Hello {{displayname}}, …\n```\nor reply to a message with the command to send that message."
    )))
}

/// The first line of the message, shortened.
fn default_name(message: &StoredMessage) -> String {
    let summary = message.summary();
    let first = summary.lines().next().unwrap_or("").trim();
    let mut name: String = first.chars().take(40).collect();
    if first.chars().count() > 40 {
        name.push('…');
    }
    if name.is_empty() {
        "Broadcast".into()
    } else {
        name
    }
}

/// Resolves the audience of a `resolving` broadcast, then previews, starts or reports it.
async fn finish_preparing(app: &App, broadcast: &Broadcast) -> Answer {
    let targets = serde_json::from_str::<Vec<String>>(&broadcast.audience_json)
        .ok()
        .and_then(|words| audience::parse_targets(&words).ok())
        .unwrap_or_default();
    let options: SendOptions = serde_json::from_str(&broadcast.options_json).unwrap_or_default();
    if options.default && !options.dry_run {
        if let Err(error) =
            crate::defaults::record(app, broadcast.id, &targets, options.audience.recursive).await
        {
            let _ = app
                .store
                .transition(broadcast.id, BroadcastState::Resolving, BroadcastState::Cancelled)
                .await;
            return Answer::error(error.0);
        }
    }
    let count = match audience::resolve(app, broadcast.id, &targets, &options.audience).await {
        Ok(count) => count,
        Err(error) => {
            let _ = app.store.delete_deliveries(broadcast.id).await;
            let _ = app
                .store
                .transition(broadcast.id, BroadcastState::Resolving, BroadcastState::Cancelled)
                .await;
            return Answer::error(error.0);
        }
    };
    if let Err(error) = app.store.skip_opted_out(broadcast.id).await {
        return store_failed(error);
    }
    // A re-dispatched command counts what an earlier run queued too.
    let (count, opted_out) = match app.store.delivery_counts(broadcast.id).await {
        Ok(counts) => {
            (counts.get("pending").copied().unwrap_or(0) as u64, counts.get("skipped").copied().unwrap_or(0))
        }
        Err(_) => (count, 0),
    };
    let sample = app.store.sample_recipients(broadcast.id, SAMPLE).await.unwrap_or_default();
    let mut who = describe_audience(count, &sample, &targets);
    if opted_out > 0 {
        who.push_str(&format!(" {} opted out and will be skipped.", progress::thousands(opted_out)));
    }
    let (id, name) = (broadcast.id, &broadcast.name);
    if options.dry_run {
        let _ = app.store.delete_deliveries(id).await;
        let _ = app.store.transition(id, BroadcastState::Resolving, BroadcastState::DryRun).await;
        return Answer::ok(format!("Dry run, nothing sent: {who}"));
    }
    if count == 0 && !options.default {
        let _ = app.store.transition(id, BroadcastState::Resolving, BroadcastState::Empty).await;
        return Answer::error(format!("{id} «{name}»: nobody to send to. {who}"));
    }
    if count > app.config.broadcast.confirm_above && !options.yes {
        if app.store.transition(id, BroadcastState::Resolving, BroadcastState::Prepared).await.is_err() {
            return Answer::error("The bot's database failed; nothing was sent.");
        }
        let prefix = &app.config.broadcast.command_prefix;
        let preview = format!(
            "**Preview of {id} «{name}»** — {who}\n\nThe message:\n\n> {}\n\nReact with ✅ to this message or type \
             `{prefix} confirm {id}` to send it; `{prefix} cancel {id}` to drop it.",
            quote(broadcast)
        );
        return Answer::preview(id, preview);
    }
    start(app, id, BroadcastState::Resolving).await
}

/// The message text for a preview quote.
fn quote(broadcast: &Broadcast) -> String {
    serde_json::from_str::<StoredMessage>(&broadcast.content_json)
        .map(|message| message.summary().replace('\n', "\n> "))
        .unwrap_or_default()
}

/// "42 recipients: @a, @b, … (and 32 more)".
fn describe_audience(count: u64, sample: &[ruma::OwnedUserId], targets: &[Target]) -> String {
    let shown: Vec<String> = sample.iter().map(|user| format!("`{user}`")).collect();
    let more = count.saturating_sub(sample.len() as u64);
    let noun = if count == 1 { "recipient" } else { "recipients" };
    let mut text = format!("{} {noun}", progress::thousands(count as i64));
    if !shown.is_empty() {
        text.push_str(&format!(": {}", shown.join(", ")));
        if more > 0 {
            text.push_str(&format!(" and {} more", progress::thousands(more as i64)));
        }
    }
    if targets.is_empty() {
        text.push_str(" (no audience)");
    }
    text.push('.');
    text
}

/// Starts a broadcast that is in `from` (resolving or prepared).
pub async fn start(app: &App, id: BroadcastId, from: BroadcastState) -> Answer {
    match app.store.transition(id, from, BroadcastState::Running).await {
        Ok(true) => {}
        Ok(false) => {
            let state = app.store.broadcast(id).await.map(|b| b.state.as_str()).unwrap_or("unknown");
            return Answer::error(format!("{id} cannot be started: it is {state}."));
        }
        Err(error) => return store_failed(error),
    }
    let broadcast = match app.store.broadcast(id).await {
        Ok(broadcast) => broadcast,
        Err(error) => return store_failed(error),
    };
    progress::announce(app, &broadcast).await;
    app.deliveries_ready.notify_waiters();
    tracing::info!(broadcast = %id, "broadcast started");
    Answer::ok(format!("Sending {id} «{}».", broadcast.name))
}

/// `!bc confirm <id>`, or ✅ on a preview (`preview` is then the preview's event).
pub async fn confirm(ctx: &Context<'_>, id: BroadcastId) -> Answer {
    let broadcast = match ctx.app.store.broadcast(id).await {
        Ok(broadcast) => broadcast,
        Err(crate::store::StoreError::NotFound) => {
            return Answer::error(format!("There is no broadcast {id}."))
        }
        Err(error) => return store_failed(error),
    };
    if broadcast.control_room_id != ctx.room {
        return Answer::error(format!("{id} was prepared in another control room; confirm it there."));
    }
    if broadcast.state != BroadcastState::Prepared {
        return Answer::error(format!("{id} is {}, not waiting for confirmation.", broadcast.state.as_str()));
    }
    start(ctx.app, id, BroadcastState::Prepared).await
}

/// The preview's event ID is recorded once the preview is posted.
pub async fn remember_preview(app: &App, id: BroadcastId, event: &OwnedEventId) {
    if let Err(error) = app.store.set_preview_event(id, event).await {
        tracing::error!(%error, "cannot record a preview");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_default_to_the_start_of_the_message() {
        let message = StoredMessage::markdown("Welcome to the company!\nMore text");
        assert_eq!(default_name(&message), "Welcome to the company!");
        let long = StoredMessage::markdown(&"x".repeat(60));
        assert_eq!(default_name(&long).chars().count(), 41);
    }

    #[test]
    fn audiences_are_described_with_a_sample() {
        let users: Vec<ruma::OwnedUserId> =
            ["@a:x.org", "@b:x.org"].iter().map(|u| ruma::UserId::parse(*u).unwrap()).collect();
        let text = describe_audience(1200, &users, &[Target::Server]);
        assert_eq!(text, "1,200 recipients: `@a:x.org`, `@b:x.org` and 1,198 more.");
    }
}
