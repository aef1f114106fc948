//! The `!bc …` commands: one clap enum whose doc comments are the help, a parser that answers
//! mistakes with usage and a caret under the bad word, and the handlers.
//!
//! Handlers are thin: they take a parsed [`Command`], call the broadcast lifecycle or the store,
//! and return an [`Answer`]; posting the answer (reaction + notice) is the dispatcher's job.

pub mod after;
pub mod parse;
pub mod send;
pub mod status;

use std::sync::Arc;

use clap::{
    error::{ContextKind, ContextValue, ErrorKind},
    CommandFactory, FromArgMatches, Parser, Subcommand,
};
use ruma::{EventId, OwnedEventId, RoomId, UserId};

pub use crate::rooms::notices::Answer;
use crate::{
    base::{
        i18n::{t, Arg, Language},
        message::{StoredMessage, MAX_CONTENT_BYTES},
        permissions::Level,
        store::{Broadcast, BroadcastId, BroadcastState, StoreError},
    },
    broadcasts::Broadcasts,
    rooms::notices::shortened,
};

/// Where a command was typed, by whom, and what came with it.
pub struct Context<'a> {
    pub broadcasts: &'a Arc<Broadcasts>,
    pub room: &'a RoomId,
    pub event_id: &'a EventId,
    pub sender: &'a UserId,
    pub level: Level,
    /// The lines after the command line.
    pub body: &'a str,
    /// The message the command replies to, if any.
    pub reply_to: Option<OwnedEventId>,
}

impl Context<'_> {
    /// The language answers are written in.
    pub fn language(&self) -> crate::base::i18n::Language {
        self.broadcasts.rooms.language()
    }
}

/// Runs a parsed command; `None` when a task answers it later.
pub async fn run(ctx: &Context<'_>, command: Command) -> Option<Answer> {
    let prefix = &ctx.broadcasts.rooms.broadcast.command_prefix;
    Some(match command {
        Command::Help { command } => help(ctx.language(), prefix, command.as_deref()),
        Command::Send { audience, name, default, except, recursive, persona, at, r#in, yes, dry_run } => {
            let when = send::When { at, r#in };
            let request =
                send::SendRequest { audience, name, except, recursive, persona, when, yes, dry_run, default };
            return send::send(ctx, request).await;
        }
        Command::Audience { audience } => return send::send(ctx, send::SendRequest::dry_run(audience)).await,
        Command::Confirm { id } => send::confirm(ctx, id).await,
        Command::Cancel { id } => status::cancel(ctx, id).await,
        Command::List => status::list(ctx).await,
        Command::Status { id } => status::status(ctx, id).await,
        Command::Defaults => status::defaults(ctx).await,
        Command::Default { switch, id } => status::switch_default(ctx, id, switch == "on").await,
        Command::Edit { id, dry_run } => after::edit(ctx, id, dry_run).await,
        Command::Redact { id, reason, dry_run } => after::redact(ctx, id, &reason, dry_run).await,
        Command::Poll { action: PollAction::Close { id, dry_run } } => {
            after::close_poll(ctx, id, dry_run).await
        }
    })
}

/// A parsed command line.
#[derive(Debug, Parser)]
#[command(
    no_binary_name = true,
    disable_help_flag = true,
    disable_help_subcommand = true,
    disable_version_flag = true
)]
pub struct CommandLine {
    #[command(subcommand)]
    pub command: Command,
}

/// The commands. The first line of each doc comment is its summary in `help`.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Show the commands, or the details of one
    Help {
        /// The command to explain
        command: Option<String>,
    },
    /// Prepare a broadcast: the lines after the command are the message
    ///
    /// Audience words: @user:server (one person), #alias:server or !roomid (the joined members
    /// of a room or space), server (every active local user; admins only), search:<text> (every
    /// active local user whose ID or display name contains the text; admins only).
    /// Without a message, when the command replies to a message, that message is sent.
    /// Limits: the message at most 30,000 bytes as a Matrix event (about as many characters of
    /// plain text), at most 1,000 audience words (name a room or space for more).
    Send {
        /// Who gets it: @user:server, #room:server, !roomid, server, or search:<text>
        #[arg(required = true, value_name = "AUDIENCE")]
        audience: Vec<String>,
        /// A name for the broadcast, shown in lists and replies (at most 100 characters)
        #[arg(long)]
        name: Option<String>,
        /// Also send it to everyone who joins later (welcome message)
        #[arg(long)]
        default: bool,
        /// Leave these users out
        #[arg(long, value_name = "@USER", num_args = 1..)]
        except: Vec<String>,
        /// Include the members of every room in a space's hierarchy
        #[arg(long)]
        recursive: bool,
        /// Send it as this persona (a name under `personas:` in the config), from its own DMs
        #[arg(long = "as", value_name = "PERSONA")]
        persona: Option<String>,
        /// Send it at this time ("2026-12-01 09:00", or "09:00" for today) in broadcast.timezone
        #[arg(long, value_name = "TIME", conflicts_with = "in")]
        at: Option<String>,
        /// Send it after this long (30m, 2h, 1d)
        #[arg(long, value_name = "DURATION")]
        r#in: Option<String>,
        /// Start without waiting for confirmation
        #[arg(long)]
        yes: bool,
        /// Show who would get it and send nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Start a prepared broadcast
    Confirm {
        /// The broadcast, e.g. #12
        #[arg(value_parser = parse_broadcast_id)]
        id: BroadcastId,
    },
    /// Stop what is not yet delivered
    Cancel {
        /// The broadcast, e.g. #12
        #[arg(value_parser = parse_broadcast_id)]
        id: BroadcastId,
    },
    /// Recent broadcasts with their counts
    List,
    /// Delivered, pending, failed (with reasons), replied and read counts of a broadcast
    Status {
        /// The broadcast, e.g. #12
        #[arg(value_parser = parse_broadcast_id)]
        id: BroadcastId,
    },
    /// Replace the text in every recipient's copy (the new text on the following lines)
    ///
    /// Delivered copies are edited (clients show "(edited)"), copies not yet delivered go out
    /// with the new text, and a default welcomes people who join later with it.
    Edit {
        /// The broadcast, e.g. #12
        #[arg(value_parser = parse_broadcast_id)]
        id: BroadcastId,
        /// Show how many copies would change and change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Retract every copy of a broadcast and cancel what is not delivered yet
    ///
    /// A default broadcast stops welcoming people who join.
    Redact {
        /// The broadcast, e.g. #12
        #[arg(value_parser = parse_broadcast_id)]
        id: BroadcastId,
        /// Why, shown to recipients whose client shows reasons
        #[arg(value_name = "REASON", trailing_var_arg = true)]
        reason: Vec<String>,
        /// Show how many copies would change and change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Polls: reply to a poll in this room with `send` to send it; close one here
    Poll {
        #[command(subcommand)]
        action: PollAction,
    },
    /// List default broadcasts (welcome messages)
    Defaults,
    /// Turn a default broadcast off or on again
    Default {
        /// off or on
        #[arg(value_parser = ["off", "on"], value_name = "off|on")]
        switch: String,
        /// The broadcast, e.g. #12
        #[arg(value_parser = parse_broadcast_id)]
        id: BroadcastId,
    },
    /// Count and sample an audience without sending anything
    Audience {
        /// Who: @user:server, #room:server, !roomid, server, or search:<text>
        #[arg(required = true, value_name = "AUDIENCE")]
        audience: Vec<String>,
    },
}

/// What `!bc poll` does.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum PollAction {
    /// End a poll broadcast in every DM and post the final tally
    Close {
        /// The broadcast, e.g. #12
        #[arg(value_parser = parse_broadcast_id)]
        id: BroadcastId,
        /// Show how many DMs would change and change nothing
        #[arg(long)]
        dry_run: bool,
    },
}

/// Broadcast `id` as the command's room may see it: its own broadcasts, or any for an admin.
/// The answer when there is none (or none here) or the store failed.
async fn find_broadcast(ctx: &Context<'_>, id: BroadcastId) -> Result<Broadcast, Answer> {
    match ctx.broadcasts.rooms.store.broadcast(id).await {
        Ok(broadcast) if broadcast.control_room_id == ctx.room || ctx.level >= Level::Admin => Ok(broadcast),
        Ok(_) | Err(StoreError::NotFound) => {
            Err(Answer::error(t!(ctx.language(), "command-no-such-broadcast", id = id.to_string())))
        }
        Err(error) => Err(Answer::store_failed(error)),
    }
}

/// A message typed after a command (Markdown), refused when it is too large to be sent, or
/// edited, as one Matrix event. A body that alone is over the limit is refused unrendered.
fn markdown_message(language: Language, body: &str) -> Result<StoredMessage, Answer> {
    if body.len() > MAX_CONTENT_BYTES {
        return Err(too_long(language, body, body.len(), true));
    }
    let message = StoredMessage::markdown(body);
    match message.content_bytes() {
        bytes if bytes > MAX_CONTENT_BYTES => Err(too_long(language, body, bytes, false)),
        _ => Ok(message),
    }
}

/// Refuses a message (copied from another) that is too large for one Matrix event.
fn fits(language: Language, message: StoredMessage) -> Result<StoredMessage, Answer> {
    match message.content_bytes() {
        bytes if bytes > MAX_CONTENT_BYTES => {
            Err(too_long(language, message.content["body"].as_str().unwrap_or(""), bytes, false))
        }
        _ => Ok(message),
    }
}

/// `more`: the message has at least `bytes` bytes (it was not rendered).
fn too_long(language: Language, body: &str, bytes: usize, more: bool) -> Answer {
    Answer::error(t!(
        language,
        "command-too-long",
        chars = body.chars().count(),
        bytes = bytes,
        more = if more { "yes" } else { "no" },
        most = MAX_CONTENT_BYTES,
    ))
}

/// `#12` or `12`.
fn parse_broadcast_id(text: &str) -> Result<BroadcastId, String> {
    parse_broadcast_id_in(Language::En, text)
}

/// `#12` or `12`; the refusal in `language`.
fn parse_broadcast_id_in(language: Language, text: &str) -> Result<BroadcastId, String> {
    text.trim_start_matches('#')
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(BroadcastId)
        .ok_or_else(|| t!(language, "command-not-a-broadcast-id", text = format!("{text:?}")))
}

/// A broadcast state's name in `language`.
pub fn state_name(language: Language, state: BroadcastState) -> String {
    match state {
        BroadcastState::Resolving => t!(language, "state-resolving"),
        BroadcastState::Prepared => t!(language, "state-prepared"),
        BroadcastState::Scheduled => t!(language, "state-scheduled"),
        BroadcastState::Running => t!(language, "state-running"),
        BroadcastState::Done => t!(language, "state-done"),
        BroadcastState::Cancelled => t!(language, "state-cancelled"),
        BroadcastState::DryRun => t!(language, "state-dry_run"),
        BroadcastState::Empty => t!(language, "state-empty"),
    }
}

/// The clap command of the `!bc` commands in `language`: the structure the [`Command`] enum
/// derives, with every command's description and every argument's help from the catalogue
/// (`help-<command>`, `help-<command>-details` after the summary, `help-<command>-<argument>`),
/// and broadcast numbers refused in `language`.
pub fn localized_command(language: Language) -> clap::Command {
    let root = CommandLine::command();
    let about = help_text(language, "help-bc");
    localize(language, root.about(about), "help")
}

/// `command`'s subcommands (and theirs), whose keys start with `key`, in `language`.
fn localize(language: Language, mut command: clap::Command, key: &str) -> clap::Command {
    let names: Vec<String> = command.get_subcommands().map(|sub| sub.get_name().to_owned()).collect();
    for name in names {
        let key = format!("{key}-{name}");
        command = command.mut_subcommand(&name, |sub| {
            let about = help_text(language, &key);
            let long_about = sub
                .get_long_about()
                .map(|_| format!("{about}\n\n{}", help_text(language, &format!("{key}-details"))));
            let arguments: Vec<String> = sub.get_arguments().map(|arg| arg.get_id().to_string()).collect();
            let mut sub = sub.about(about);
            if let Some(long_about) = long_about {
                sub = sub.long_about(long_about);
            }
            for id in arguments {
                let help = help_text(language, &format!("{key}-{}", id.replace('_', "-")));
                sub = sub.mut_arg(&id, |arg| {
                    let arg = arg.help(help);
                    match id == "id" {
                        true => arg.value_parser(move |text: &str| parse_broadcast_id_in(language, text)),
                        false => arg,
                    }
                });
            }
            localize(language, sub, &key)
        });
    }
    command
}

/// A help text of the catalogue, with the limits it may name.
fn help_text(language: Language, key: &str) -> String {
    let limits = [
        ("bytes", crate::base::i18n::Arg::from(MAX_CONTENT_BYTES)),
        ("words", crate::base::i18n::Arg::from(send::MAX_AUDIENCE_WORDS)),
        ("chars", crate::base::i18n::Arg::from(send::MAX_NAME_CHARS)),
    ];
    crate::base::i18n::text(language, key, &limits)
}

/// Clap's headings in a rendered help or usage, in `language`.
fn localize_headings(language: Language, text: &str) -> String {
    let headings = [
        ("Usage:", t!(language, "help-heading-usage")),
        ("Arguments:", t!(language, "help-heading-arguments")),
        ("Options:", t!(language, "help-heading-options")),
        ("Commands:", t!(language, "help-heading-commands")),
    ];
    let possible = format!("[{}: ", t!(language, "help-possible-values"));
    let lines = text.split('\n').map(|line| {
        let line = line.replace("[possible values: ", &possible); // not for people: clap's words, replaced
        for (heading, localized) in &headings {
            if line == *heading || line.starts_with(&format!("{heading} ")) {
                return format!("{localized}{}", &line[heading.len()..]);
            }
        }
        line
    });
    lines.collect::<Vec<_>>().join("\n")
}

/// Parses the first line of a message that starts with `prefix` (prefix included).
/// A mistake is answered as Markdown in `language`: what is wrong, the line with a caret, and
/// the usage.
pub fn parse_command(language: Language, prefix: &str, line: &str) -> Result<Command, Answer> {
    let words = parse::split_words(line).map_err(|unclosed| {
        Answer::error(format!(
            "{}\n```\n{}\n```",
            t!(language, "parse-unclosed-quote"),
            parse::caret(line, unclosed.position, 1)
        ))
    })?;
    let arguments = words.iter().skip(1).map(|word| word.text.as_str());
    let parsed = localized_command(language)
        .try_get_matches_from(arguments)
        .and_then(|matches| CommandLine::from_arg_matches(&matches));
    let error = match parsed {
        Ok(parsed) => return Ok(parsed.command),
        Err(error) => error,
    };
    let bad = [ContextKind::InvalidValue, ContextKind::InvalidSubcommand, ContextKind::InvalidArg]
        .into_iter()
        .find_map(|kind| error.get(kind).map(|value| value.to_string()));
    let bad_word = bad.as_deref().and_then(|bad| {
        words.iter().skip(1).find(|word| word.text == bad || word.text.starts_with(&format!("{bad}=")))
    });
    let (start, len) = match bad_word {
        Some(word) => (word.start, word.len),
        None => (line.chars().count() + 1, 1),
    };
    let (headline, tips) = error_text(language, &error);
    // Clap quotes the bad value, which may be anything typed: shown shortened.
    let headline = shortened(&headline, 300);
    let mut root = localized_command(language);
    let usage = match words.get(1).and_then(|word| root.find_subcommand_mut(&word.text)) {
        Some(sub) => {
            let sub = sub.clone().bin_name(format!("{prefix} {}", sub.get_name()));
            localize_headings(language, &sub.clone().render_usage().to_string())
        }
        None => t!(language, "parse-usage-of-all", prefix = prefix),
    };
    let mut text =
        format!("{}\n```\n{}\n```\n{}", capitalise(&headline), parse::caret(line, start, len), usage.trim());
    for tip in tips {
        text.push_str(&format!("\n{}", shortened(&tip, 300)));
    }
    Err(Answer::error(text))
}

/// What is wrong, and the tips, of a command line clap refused: the common kinds of mistakes
/// from the catalogue, the others as clap words them.
fn error_text(language: Language, error: &clap::Error) -> (String, Vec<String>) {
    let rendered = error.render().to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|text| !text.is_empty());
    let clap_headline = lines.next().map(|first| first.trim_start_matches("error: ").to_owned());
    let headline = catalogue_headline(language, error)
        .or(clap_headline)
        .unwrap_or_else(|| t!(language, "parse-invalid-command"));
    (headline, tips(language, error))
}

/// A string of the context clap gave its error.
fn context_text(error: &clap::Error, kind: ContextKind) -> Option<String> {
    match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        _ => None,
    }
}

/// What is wrong, from the catalogue, for the common kinds of mistakes; `None` for the others.
fn catalogue_headline(language: Language, error: &clap::Error) -> Option<String> {
    let text = |kind| context_text(error, kind);
    let (arg, value) = (text(ContextKind::InvalidArg), text(ContextKind::InvalidValue));
    match error.kind() {
        ErrorKind::UnknownArgument => {
            arg.clone().map(|arg| t!(language, "parse-unexpected-argument", arg = arg))
        }
        ErrorKind::InvalidSubcommand => text(ContextKind::InvalidSubcommand)
            .map(|name| t!(language, "parse-unknown-command", name = name)),
        ErrorKind::InvalidValue => match (arg.clone(), value) {
            (Some(arg), Some(value)) if value.is_empty() => {
                Some(t!(language, "parse-value-missing", arg = arg))
            }
            (Some(arg), Some(value)) => Some(t!(language, "parse-invalid-value", arg = arg, value = value)),
            _ => None,
        },
        ErrorKind::ValueValidation => match (arg.clone(), value, std::error::Error::source(error)) {
            (Some(arg), Some(value), Some(reason)) => Some(t!(
                language,
                "parse-invalid-value-because",
                arg = arg,
                value = value,
                reason = reason.to_string()
            )),
            (Some(arg), Some(value), None) => {
                Some(t!(language, "parse-invalid-value", arg = arg, value = value))
            }
            _ => None,
        },
        ErrorKind::MissingRequiredArgument => Some(t!(language, "parse-missing-arguments")),
        ErrorKind::ArgumentConflict => match (arg.clone(), text(ContextKind::PriorArg)) {
            (Some(arg), Some(prior)) if arg == prior => Some(t!(language, "parse-used-twice", arg = arg)),
            (Some(arg), Some(prior)) => Some(t!(language, "parse-conflict", arg = arg, other = prior)),
            _ => None,
        },
        _ => None,
    }
}

/// The tips of a refused command line: similar commands, arguments or values, from the
/// catalogue.
fn tips(language: Language, error: &clap::Error) -> Vec<String> {
    let arg = context_text(error, ContextKind::InvalidArg);
    let mut tips = Vec::new();
    for (kind, key) in [
        (ContextKind::SuggestedSubcommand, "parse-tip-similar-command"),
        (ContextKind::SuggestedArg, "parse-tip-similar-argument"),
        (ContextKind::SuggestedValue, "parse-tip-similar-value"),
    ] {
        let names = match error.get(kind) {
            Some(ContextValue::String(name)) => vec![name.clone()],
            Some(ContextValue::Strings(names)) => names.clone(),
            _ => continue,
        };
        let quoted: Vec<String> = names.iter().map(|name| format!("'{name}'")).collect();
        let args = [("count", Arg::from(names.len())), ("names", Arg::from(quoted.join(", ")))];
        tips.push(crate::base::i18n::text(language, key, &args));
    }
    if let Some(ContextValue::StyledStrs(suggestions)) = error.get(ContextKind::Suggested) {
        for suggestion in suggestions {
            tips.push(match (error.kind(), &arg) {
                (ErrorKind::UnknownArgument, Some(arg)) => t!(language, "parse-tip-as-value", arg = arg),
                _ => format!("tip: {suggestion}"), // not for people: clap's own rare tip, as clap words it
            });
        }
    }
    tips
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The generated help in `language`: every command with its summary, or the full help of one.
pub fn help(language: Language, prefix: &str, command: Option<&str>) -> Answer {
    let mut root = localized_command(language).name(prefix.to_owned()).bin_name(prefix.to_owned());
    root.build();
    match command {
        None => {
            let mut text = format!("{}\n\n", t!(language, "help-commands-title"));
            for sub in root.get_subcommands() {
                let usage = sub.clone().render_usage().to_string();
                let usage = usage.trim_start_matches("Usage: ").trim();
                let about = sub.get_about().map(|about| about.to_string()).unwrap_or_default();
                text.push_str(&format!("- `{usage}` — {about}\n"));
            }
            text.push_str(&format!("\n{}", t!(language, "help-one-command", prefix = prefix)));
            Answer::ok(text)
        }
        Some(name) => match root.find_subcommand_mut(name) {
            Some(sub) => {
                let long = localize_headings(language, &sub.render_long_help().to_string());
                Answer::ok(format!("```\n{}\n```", long.trim_end()))
            }
            None => Answer::error(t!(language, "help-no-such-command", name = name, prefix = prefix)),
        },
    }
}

#[cfg(test)]
mod tests;
