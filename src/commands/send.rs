//! `!bc send`, `!bc audience` and `!bc confirm`: check what was asked, then hand the broadcast to
//! the [lifecycle](crate::lifecycle), which resolves its audience in a task and previews or
//! starts it.

use super::{find_broadcast, Answer, Context};
use crate::{
    audience,
    lifecycle::{self, Draft},
    message::StoredMessage,
    store::{AudienceOptions, BroadcastId, BroadcastState, SendOptions},
};

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

impl SendRequest {
    /// `!bc audience`: a dry run of a plain send.
    pub fn dry_run(audience: Vec<String>) -> Self {
        Self {
            audience,
            name: None,
            except: vec![],
            recursive: false,
            yes: false,
            dry_run: true,
            default: false,
        }
    }
}

/// Checks and records the broadcast; a task resolves its audience and answers the command
/// (`None`: answered later), so that a large audience does not hold up other commands.
pub async fn send(ctx: &Context<'_>, request: SendRequest) -> Option<Answer> {
    match ctx.app.store.broadcast_by_command(ctx.event_id).await {
        Ok(None) => {}
        Ok(Some(existing)) => {
            // Dispatched again after a restart: its resolution was resumed at start-up.
            tracing::info!(broadcast = %existing.id, "command seen again; its broadcast exists");
            return None;
        }
        Err(error) => return Some(Answer::store_failed(error)),
    }
    let refuse = |error: audience::AudienceError| Answer::error(error.0);
    let checked = async {
        let targets = audience::parse_targets(&request.audience).map_err(refuse)?;
        let except = audience::parse_users(&request.except).map_err(refuse)?;
        audience::authorize(ctx.app.hs(), ctx.sender, ctx.level, &targets).await.map_err(refuse)?;
        let message = message(ctx, request.dry_run).await?;
        let options = SendOptions {
            audience: AudienceOptions { except, recursive: request.recursive },
            yes: request.yes,
            dry_run: request.dry_run,
            default: request.default,
            persona: None,
        };
        Ok::<_, Answer>((message, options))
    };
    let (message, options) = match checked.await {
        Ok(checked) => checked,
        Err(answer) => return Some(answer),
    };
    let draft = Draft {
        name: request.name.clone().unwrap_or_else(|| default_name(&message)),
        control_room: ctx.room,
        created_by: ctx.sender,
        command: ctx.event_id,
        message: &message,
        audience: &request.audience,
        options: &options,
    };
    lifecycle::create(ctx.app, draft).await.err().map(Answer::store_failed)
}

/// The message of a `send`: the lines after the command, or the message the command replies to.
async fn message(ctx: &Context<'_>, dry_run: bool) -> Result<StoredMessage, Answer> {
    if !ctx.body.trim().is_empty() {
        return Ok(StoredMessage::markdown(ctx.body));
    }
    if let Some(replied) = &ctx.reply_to {
        let event = ctx.app.hs().room_event(ctx.room, replied).await.map_err(|error| {
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

/// `!bc confirm <id>`.
pub async fn confirm(ctx: &Context<'_>, id: BroadcastId) -> Answer {
    let broadcast = match find_broadcast(ctx, id).await {
        Ok(broadcast) => broadcast,
        Err(answer) => return answer,
    };
    if broadcast.control_room_id != ctx.room {
        return Answer::error(format!("{id} was prepared in another control room; confirm it there."));
    }
    if broadcast.state != BroadcastState::Prepared {
        return Answer::error(format!("{id} is {}, not waiting for confirmation.", broadcast.state.as_str()));
    }
    if let Err(refused) = lifecycle::may_confirm(ctx.app, &broadcast, ctx.sender, ctx.level).await {
        return refused;
    }
    lifecycle::start(ctx.app, id, BroadcastState::Prepared).await
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
        assert_eq!(default_name(&StoredMessage::markdown("")), "Broadcast");
    }
}
