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
    let text = |kind| match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        _ => None,
    };
    let (arg, value) = (text(ContextKind::InvalidArg), text(ContextKind::InvalidValue));
    let headline = match error.kind() {
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
    };
    let headline = headline.or(clap_headline).unwrap_or_else(|| t!(language, "parse-invalid-command"));
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
    (headline, tips)
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
mod tests {
    use super::*;

    #[test]
    fn parses_send_with_options() {
        let command =
            parse_command(Language::En, "!bc", "!bc send #all:example.org @a:b --name Welcome --yes")
                .unwrap();
        assert_eq!(
            command,
            Command::Send {
                audience: vec!["#all:example.org".into(), "@a:b".into()],
                name: Some("Welcome".into()),
                default: false,
                except: vec![],
                recursive: false,
                persona: None,
                at: None,
                r#in: None,
                yes: true,
                dry_run: false,
            }
        );
        let command = parse_command(Language::En, "!bc", "!bc send @a:b --as hr").unwrap();
        assert!(matches!(&command, Command::Send { persona: Some(name), .. } if name == "hr"), "{command:?}");
    }

    #[test]
    fn parses_broadcast_ids_with_or_without_hash() {
        assert_eq!(
            parse_command(Language::En, "!bc", "!bc status #12").unwrap(),
            Command::Status { id: BroadcastId(12) }
        );
        assert_eq!(
            parse_command(Language::En, "!bc", "!bc confirm 3").unwrap(),
            Command::Confirm { id: BroadcastId(3) }
        );
    }

    #[test]
    fn unknown_command_gets_a_caret_under_it_and_a_suggestion() {
        let answer = parse_command(Language::En, "!bc", "!bc sned #all:example.org").unwrap_err();
        assert!(!answer.ok);
        assert!(answer.markdown.contains("!bc sned #all:example.org\n    ^^^^\n```"), "{}", answer.markdown);
        assert!(answer.markdown.contains("'send'"), "{}", answer.markdown);
    }

    #[test]
    fn bad_value_gets_a_caret_under_it() {
        let answer = parse_command(Language::En, "!bc", "!bc status twelve").unwrap_err();
        assert!(answer.markdown.contains("!bc status twelve\n           ^^^^^^\n```"), "{}", answer.markdown);
        assert!(answer.markdown.contains("Usage: !bc status <ID>"), "{}", answer.markdown);
    }

    #[test]
    fn unknown_option_gets_a_caret_under_it() {
        let answer = parse_command(Language::En, "!bc", "!bc send @a:b --yse").unwrap_err();
        assert!(
            answer.markdown.contains("!bc send @a:b --yse\n              ^^^^^\n```"),
            "{}",
            answer.markdown
        );
    }

    #[test]
    fn a_mistake_in_a_100000_character_line_gets_a_short_answer() {
        let line = format!("!bc send @x:example.org --yes {}", "x".repeat(100_000));
        let answer = parse_command(Language::En, "!bc", &format!("{line} --yse")).unwrap_err();
        assert!(answer.markdown.len() < 2_000, "{} bytes", answer.markdown.len());
        assert!(answer.markdown.contains("xxx --yse\n"), "the caret's window: {}", answer.markdown);
        let answer =
            parse_command(Language::En, "!bc", &format!("!bc status {}", "1".repeat(100_000))).unwrap_err();
        assert!(answer.markdown.len() < 2_000, "{} bytes", answer.markdown.len());
        assert!(answer.markdown.starts_with("Invalid value '1111"), "{}", answer.markdown);
    }

    #[test]
    fn the_help_of_send_names_the_limits_as_they_are() {
        let help = help(Language::En, "!bc", Some("send")).markdown;
        let number = |n: usize| crate::base::i18n::number(Language::En, n as i64);
        let bytes = format!("at most {} bytes", number(MAX_CONTENT_BYTES));
        let words = format!("at most {} audience words", number(send::MAX_AUDIENCE_WORDS));
        let name = format!("(at most {} characters)", send::MAX_NAME_CHARS);
        for limit in [bytes, words, name] {
            assert!(help.contains(&limit), "{limit:?} in {help}");
        }
    }

    #[test]
    fn missing_argument_points_past_the_end() {
        let answer = parse_command(Language::En, "!bc", "!bc status").unwrap_err();
        assert!(answer.markdown.contains("!bc status\n           ^\n```"), "{}", answer.markdown);
    }

    #[test]
    fn help_lists_every_command_from_the_enum() {
        let answer = help(Language::En, "!bc", None);
        assert!(answer.ok);
        for name in [
            "help", "send", "confirm", "cancel", "list", "status", "edit", "redact", "poll", "defaults",
            "default", "audience",
        ] {
            assert!(
                answer.markdown.contains(&format!("`!bc {name}")),
                "{name} missing from\n{}",
                answer.markdown
            );
        }
        assert!(answer.markdown.contains("Prepare a broadcast"));
    }

    #[test]
    fn help_of_one_command_shows_its_options() {
        let answer = help(Language::En, "!bc", Some("send"));
        assert!(answer.markdown.contains("--dry-run"), "{}", answer.markdown);
        assert!(answer.markdown.contains("--as <PERSONA>"), "{}", answer.markdown);
        assert!(!help(Language::En, "!bc", Some("nope")).ok);
    }

    /// Every subcommand and argument of every level, with the key its help comes from.
    fn help_keys(command: &clap::Command, key: &str, found: &mut Vec<(String, Vec<String>)>) {
        for sub in command.get_subcommands() {
            let key = format!("{key}-{}", sub.get_name());
            let arguments =
                sub.get_arguments().map(|arg| format!("{key}-{}", arg.get_id().as_str().replace('_', "-")));
            let mut keys = vec![key.clone()];
            if sub.get_long_about().is_some() {
                keys.push(format!("{key}-details"));
            }
            keys.extend(arguments);
            found.push((sub.get_name().to_owned(), keys));
            help_keys(sub, &key, found);
        }
    }

    /// Issue 15: every command and argument takes its help from the catalogue, in every language.
    #[test]
    fn every_command_and_argument_has_its_help_in_the_catalogue() {
        let mut found = Vec::new();
        help_keys(&CommandLine::command(), "help", &mut found);
        assert!(found.len() >= 13, "{found:?}");
        let mut missing = Vec::new();
        for language in Language::ALL {
            for key in found.iter().flat_map(|(_, keys)| keys).chain([&"help-bc".to_owned()]) {
                if help_text(language, key) == *key {
                    missing.push(format!("{}: {key}", language.code()));
                }
            }
        }
        assert!(missing.is_empty(), "help texts missing from locales/*/help.ftl:\n{}", missing.join("\n"));
    }

    /// The English catalogue says what the doc comments of [`Command`] say (clap's own help).
    #[test]
    fn the_english_help_is_the_doc_comments() {
        fn compare(derived: &clap::Command, localized: &clap::Command) {
            for (ours, theirs) in derived.get_subcommands().zip(localized.get_subcommands()) {
                let name = ours.get_name();
                assert_eq!(
                    ours.get_about().map(ToString::to_string),
                    theirs.get_about().map(ToString::to_string),
                    "{name}"
                );
                assert_eq!(
                    ours.get_long_about().map(ToString::to_string),
                    theirs.get_long_about().map(ToString::to_string),
                    "{name}"
                );
                for (a, b) in ours.get_arguments().zip(theirs.get_arguments()) {
                    assert_eq!(
                        a.get_help().map(ToString::to_string),
                        b.get_help().map(ToString::to_string),
                        "{name} {}",
                        a.get_id()
                    );
                    assert_eq!(
                        a.get_long_help().map(ToString::to_string),
                        b.get_long_help().map(ToString::to_string),
                        "{name} {}",
                        a.get_id()
                    );
                }
                compare(ours, theirs);
            }
        }
        compare(&CommandLine::command(), &localized_command(Language::En));
    }

    #[test]
    fn the_help_of_send_in_german() {
        let answer = help(Language::De, "!bc", Some("send"));
        let help = answer.markdown;
        assert!(help.starts_with("```\nBereitet eine Rundsendung vor"), "{help}");
        assert!(help.contains("höchstens 30.000 Bytes"), "{help}");
        assert!(help.contains("höchstens 1.000 Empfänger-Wörter"), "{help}");
        assert!(help.contains("\nAufruf: !bc send [OPTIONS] <AUDIENCE>...\n"), "{help}");
        assert!(help.contains("\nOptionen:\n"), "{help}");
        assert!(help.contains("--dry-run\n          Zeigen, wer sie erhielte, und nichts senden"), "{help}");
        let all = help_all_german();
        assert!(all.starts_with("**Befehle**\n\n- `!bc help [COMMAND]` — Zeigt die Befehle"), "{all}");
        assert!(help_default_german().contains("[mögliche Werte: off, on]"));
        let none = super::help(Language::De, "!bc", Some("nope"));
        assert_eq!(none, Answer::error("Es gibt keinen Befehl `nope`. `!bc help` listet die Befehle."));
    }

    fn help_all_german() -> String {
        help(Language::De, "!bc", None).markdown
    }

    fn help_default_german() -> String {
        help(Language::De, "!bc", Some("default")).markdown
    }

    #[test]
    fn mistakes_are_explained_in_german() {
        let answer = parse_command(Language::De, "!bc", "!bc sned #all:example.org").unwrap_err();
        assert_eq!(
            answer.markdown,
            "Unbekannter Befehl 'sned'\n```\n!bc sned #all:example.org\n    ^^^^\n```\n\
             Aufruf: !bc <BEFEHL> … (die Befehle: `!bc help`)\nTipp: ein ähnlicher Befehl existiert: 'send'"
        );
        let answer = parse_command(Language::De, "!bc", "!bc status twelve").unwrap_err();
        assert!(
            answer
                .markdown
                .starts_with("Ungültiger Wert 'twelve' für '<ID>': \"twelve\" ist keine Rundsendungsnummer"),
            "{}",
            answer.markdown
        );
        assert!(answer.markdown.contains("\nAufruf: !bc status <ID>"), "{}", answer.markdown);
        let answer = parse_command(Language::De, "!bc", "!bc send @a:b --yse").unwrap_err();
        assert!(answer.markdown.starts_with("Unerwartetes Argument '--yse'\n"), "{}", answer.markdown);
        let answer = parse_command(Language::De, "!bc", "!bc send @a:b --name").unwrap_err();
        assert!(answer.markdown.starts_with("'--name <NAME>' braucht einen Wert"), "{}", answer.markdown);
        let answer = parse_command(Language::De, "!bc", "!bc status").unwrap_err();
        assert!(answer.markdown.starts_with("Folgende Pflichtargumente fehlen:"), "{}", answer.markdown);
        let answer = parse_command(Language::De, "!bc", "!bc send @a:b --at 09:00 --in 2h").unwrap_err();
        assert!(
            answer.markdown.contains("kann nicht zusammen mit '--in <DURATION>' verwendet werden"),
            "{}",
            answer.markdown
        );
        let answer = parse_command(Language::De, "!bc", "!bc send \"x").unwrap_err();
        assert!(
            answer.markdown.starts_with("Ein Anführungszeichen ist nicht geschlossen:"),
            "{}",
            answer.markdown
        );
        assert_eq!(
            parse_command(Language::De, "!bc", "!bc status #12").unwrap(),
            Command::Status { id: BroadcastId(12) }
        );
    }

    #[test]
    fn the_english_tips_are_clap_s() {
        let answer = parse_command(Language::En, "!bc", "!bc send @a:b --yse").unwrap_err();
        assert!(
            answer.markdown.ends_with("\ntip: to pass '--yse' as a value, use '-- --yse'"),
            "{}",
            answer.markdown
        );
        let answer = parse_command(Language::En, "!bc", "!bc send @a:b --yes --yes").unwrap_err();
        assert!(
            answer.markdown.starts_with("The argument '--yes' cannot be used multiple times\n"),
            "{}",
            answer.markdown
        );
        let answer = parse_command(Language::En, "!bc", "!bc default maybe #1").unwrap_err();
        assert!(answer.markdown.starts_with("Invalid value 'maybe' for '<off|on>'\n"), "{}", answer.markdown);
    }

    mod rooms_and_rights {
        use std::sync::Arc;

        use ruma::{OwnedRoomId, OwnedUserId, RoomId};

        use super::*;
        use crate::{
            base::store::{BroadcastState, DefaultScope, SendOptions},
            testing::TestApp,
        };

        /// Runs `line` as `sender` typed it in `room`, and returns the answer.
        async fn run_line(broadcasts: &Arc<Broadcasts>, room: &RoomId, sender: &str, line: &str) -> Answer {
            run_with_body(broadcasts, room, sender, line, "").await
        }

        /// [`run_line`] with `body` on the lines after the command.
        async fn run_with_body(
            broadcasts: &Arc<Broadcasts>,
            room: &RoomId,
            sender: &str,
            line: &str,
            body: &str,
        ) -> Answer {
            let sender: OwnedUserId = sender.try_into().unwrap();
            let level = broadcasts.rooms.permissions.level(&sender);
            let event_id: ruma::OwnedEventId =
                format!("$cmd{}", crate::base::store::now_ms()).try_into().unwrap();
            let ctx = Context {
                broadcasts,
                room,
                event_id: &event_id,
                sender: &sender,
                level,
                body,
                reply_to: None,
            };
            run(&ctx, parse_command(broadcasts.rooms.language(), "!bc", line).unwrap())
                .await
                .expect("answered at once")
        }

        /// Two control rooms; in room A, an admin's pending `server` broadcast and a default.
        async fn two_rooms() -> (TestApp, OwnedRoomId, OwnedRoomId, BroadcastId) {
            let test = TestApp::new().await;
            let (room_a, room_b) = (test.control_room().await, test.control_room().await);
            let users = [test.hs.user("alice", None)];
            let id = test
                .broadcast_in(
                    BroadcastState::Prepared,
                    &room_a,
                    "All hands",
                    &["server"],
                    &users,
                    SendOptions::default(),
                )
                .await;
            test.store().add_default(id, &DefaultScope::Server).await.unwrap();
            (test, room_a, room_b, id)
        }

        /// Issue 10, item 2: ids do not reach across control rooms, below admin.
        #[tokio::test]
        async fn a_broadcaster_sees_and_acts_only_on_the_broadcasts_of_their_room() {
            let (test, room_a, room_b, id) = two_rooms().await;
            let bob = "@bob:example.org";
            for line in [
                format!("!bc status {id}"),
                format!("!bc cancel {id}"),
                format!("!bc confirm {id}"),
                format!("!bc default on {id}"),
                format!("!bc edit {id}"),
                format!("!bc redact {id}"),
                format!("!bc poll close {id}"),
            ] {
                let answer = run_line(&test.broadcasts, &room_b, bob, &line).await;
                assert_eq!(
                    answer,
                    Answer::error(format!("There is no broadcast {id} in this room.")),
                    "{line}"
                );
            }
            let list = run_line(&test.broadcasts, &room_b, bob, "!bc list").await;
            assert_eq!(list.markdown, "No broadcasts yet.", "room B's list shows room B's broadcasts");
            let defaults = run_line(&test.broadcasts, &room_b, bob, "!bc defaults").await;
            assert!(!defaults.markdown.contains("All hands"), "{}", defaults.markdown);
            assert_eq!(
                test.store().broadcast(id).await.unwrap().state,
                BroadcastState::Prepared,
                "untouched"
            );
            let admin =
                run_line(&test.broadcasts, &room_b, "@admin:example.org", &format!("!bc status {id}")).await;
            assert!(admin.ok, "an admin may name any id: {admin:?}");
            let own = run_line(&test.broadcasts, &room_a, bob, "!bc list").await;
            assert!(own.markdown.contains("All hands"), "{}", own.markdown);
        }

        /// Issue 12: edit, redact and poll close need the rights to manage the broadcast, refuse
        /// what they cannot do, and change nothing in a dry run.
        #[tokio::test]
        async fn edits_retractions_and_poll_closes_are_refused_when_they_cannot_be_made() {
            let (test, room_a, _, id) = two_rooms().await;
            let store = test.store();
            let bob = "@bob:example.org";
            let answer =
                run_with_body(&test.broadcasts, &room_a, bob, &format!("!bc edit {id}"), "New").await;
            assert!(!answer.ok && answer.markdown.contains("you may not manage it"), "{answer:?}");
            let answer = run_line(&test.broadcasts, &room_a, bob, &format!("!bc redact {id}")).await;
            assert!(!answer.ok && answer.markdown.contains("you may not manage it"), "{answer:?}");
            let answer = run_line(&test.broadcasts, &room_a, bob, "!bc edit #99").await;
            assert_eq!(answer, Answer::error("There is no broadcast #99 in this room."));

            let admin = "@admin:example.org";
            let answer = run_line(&test.broadcasts, &room_a, admin, &format!("!bc edit {id}")).await;
            assert!(!answer.ok && answer.markdown.starts_with("What is the new text?"), "{answer:?}");
            let answer = run_line(&test.broadcasts, &room_a, admin, &format!("!bc poll close {id}")).await;
            assert_eq!(answer, Answer::error(format!("{id} «All hands» is not a poll.")));
            let dry =
                run_with_body(&test.broadcasts, &room_a, admin, &format!("!bc edit {id} --dry-run"), "New")
                    .await;
            assert!(
                dry.ok && dry.markdown.starts_with("Dry run, nothing changed: 0 delivered copies"),
                "{dry:?}"
            );
            let dry = run_line(&test.broadcasts, &room_a, admin, &format!("!bc redact {id} --dry-run")).await;
            assert!(dry.ok && dry.markdown.contains("1 not yet delivered cancelled"), "{dry:?}");
            let broadcast = store.broadcast(id).await.unwrap();
            assert_eq!((broadcast.revision, broadcast.retracted_at), (0, None), "dry runs change nothing");

            let edited =
                run_with_body(&test.broadcasts, &room_a, admin, &format!("!bc edit {id}"), "All **hands**")
                    .await;
            assert!(edited.ok, "{edited:?}");
            let broadcast = store.broadcast(id).await.unwrap();
            assert_eq!(
                (broadcast.revision, broadcast.message.content["body"].as_str()),
                (1, Some("All **hands**"))
            );
            let retracted =
                run_line(&test.broadcasts, &room_a, admin, &format!("!bc redact {id} sent by mistake")).await;
            assert!(retracted.ok && retracted.markdown.contains("no longer welcomes"), "{retracted:?}");
            assert_eq!(store.retract_reason(id).await.unwrap().as_deref(), Some("sent by mistake"));
            assert_eq!(store.broadcast(id).await.unwrap().state, BroadcastState::Cancelled);
            let again = run_line(&test.broadcasts, &room_a, admin, &format!("!bc default on {id}")).await;
            assert!(!again.ok, "a retracted default stays off: {again:?}");
            let late = run_with_body(&test.broadcasts, &room_a, admin, &format!("!bc edit {id}"), "x").await;
            assert!(!late.ok && late.markdown.contains("was retracted"), "{late:?}");
        }

        /// Issue 12: a scheduled broadcast can be cancelled, and is then never sent.
        #[tokio::test]
        async fn a_cancelled_scheduled_broadcast_is_never_sent() {
            let test = TestApp::new().await;
            let room = test.control_room().await;
            let users = [test.hs.user("alice", None)];
            let options =
                SendOptions { send_at: Some(crate::base::store::now_ms() - 1), ..SendOptions::default() };
            let id = test.broadcast_in(BroadcastState::Scheduled, &room, "Later", &[], &users, options).await;
            let list = run_line(&test.broadcasts, &room, "@admin:example.org", "!bc list").await;
            assert!(list.markdown.contains("scheduled for "), "{}", list.markdown);
            let answer =
                run_line(&test.broadcasts, &room, "@admin:example.org", &format!("!bc cancel {id}")).await;
            assert!(answer.ok, "{answer:?}");
            crate::broadcasts::lifecycle::schedule::start_due(&test.broadcasts).await.unwrap();
            assert_eq!(test.store().broadcast(id).await.unwrap().state, BroadcastState::Cancelled);
            assert_eq!(test.hs.count("send_raw"), 0, "nothing was sent or announced");
        }

        /// Issue 12: a time in the past or an unreadable one is refused with the formats.
        #[tokio::test]
        async fn send_times_in_the_past_or_unreadable_are_refused() {
            let test = TestApp::new().await;
            let room = test.control_room().await;
            let admin = "@admin:example.org";
            let line = "!bc send @alice:example.org --at \"2020-01-01 09:00\"";
            let answer = run_with_body(&test.broadcasts, &room, admin, line, "Hi").await;
            assert!(!answer.ok && answer.markdown.contains("is not in the future"), "{answer:?}");
            assert!(answer.markdown.contains("YYYY-MM-DD HH:MM"), "{answer:?}");
            let answer =
                run_with_body(&test.broadcasts, &room, admin, "!bc send @alice:example.org --in soon", "Hi")
                    .await;
            assert!(
                !answer.ok && answer.markdown.contains("I cannot read the duration `soon`"),
                "{answer:?}"
            );
            let both = parse_command(Language::En, "!bc", "!bc send @a:b --at 09:00 --in 2h").unwrap_err();
            assert!(both.markdown.contains("cannot be used with"), "{}", both.markdown);
        }

        /// Issue 10, item 14: a broadcast's name is shown as written, never as markup.
        #[tokio::test]
        async fn broadcast_names_are_escaped_in_answers() {
            let test = TestApp::new().await;
            let room = test.control_room().await;
            let name = "<img src=x> *bold* [link](https://evil.example)";
            let id = test
                .broadcast_in(BroadcastState::Prepared, &room, name, &[], &[], SendOptions::default())
                .await;
            for line in [format!("!bc status {id}"), "!bc list".to_owned(), format!("!bc cancel {id}")] {
                let answer = run_line(&test.broadcasts, &room, "@bob:example.org", &line).await;
                let html =
                    ruma::events::room::message::RoomMessageEventContent::notice_markdown(&answer.markdown);
                let rendered = serde_json::to_value(&html).unwrap();
                let formatted = rendered["formatted_body"].as_str().unwrap_or("");
                assert!(
                    !formatted.contains("<img") && !formatted.contains("<em>") && !formatted.contains("<a "),
                    "{line}: {formatted}"
                );
                assert!(formatted.contains("&lt;img src=x&gt;"), "{line}: {formatted}");
            }
        }

        /// Issue 10, item 2: confirming needs the rights the audience needs.
        #[tokio::test]
        async fn only_the_creator_or_someone_with_the_rights_may_confirm() {
            let test = TestApp::new().await;
            let room = test.control_room().await;
            let users = [test.hs.user("alice", None)];
            let options = SendOptions::default();
            let id = test
                .broadcast_in(BroadcastState::Prepared, &room, "All hands", &["server"], &users, options)
                .await;
            let answer =
                run_line(&test.broadcasts, &room, "@bob:example.org", &format!("!bc confirm {id}")).await;
            assert!(
                !answer.ok && answer.markdown.contains("Only admins of the bot may send to `server`"),
                "{answer:?}"
            );
            assert_eq!(test.store().broadcast(id).await.unwrap().state, BroadcastState::Prepared);
            let answer =
                run_line(&test.broadcasts, &room, "@admin:example.org", &format!("!bc confirm {id}")).await;
            assert!(answer.ok, "{answer:?}");
        }

        /// Issue 15: answers in German with `language: de`: refusals, status, list, plurals and
        /// numbers written the German way.
        #[tokio::test]
        async fn answers_are_german_with_language_de() {
            let test = TestApp::with_config("language: de\n").await;
            let room = test.control_room().await;
            let admin = "@admin:example.org";
            let answer = run_line(&test.broadcasts, &room, admin, "!bc status #99").await;
            assert_eq!(answer, Answer::error("In diesem Raum gibt es keine Rundsendung #99."));
            let list = run_line(&test.broadcasts, &room, admin, "!bc list").await;
            assert_eq!(list.markdown, "Noch keine Rundsendungen.");
            let defaults = run_line(&test.broadcasts, &room, admin, "!bc defaults").await;
            assert_eq!(defaults.markdown, "Keine Standard-Rundsendungen. `send … --default` erstellt eine.");

            let users = [test.hs.user("alice", None)];
            let id = test
                .broadcast_in(
                    BroadcastState::Prepared,
                    &room,
                    "Alle",
                    &["server"],
                    &users,
                    SendOptions::default(),
                )
                .await;
            let status = run_line(&test.broadcasts, &room, admin, &format!("!bc status {id}")).await;
            assert!(
                status.markdown.starts_with(&format!("**{id} «Alle»** — vorbereitet\n\n")),
                "{}",
                status.markdown
            );
            assert!(status.markdown.contains("- zugestellt: 0\n- ausstehend: 1\n"), "{}", status.markdown);
            let list = run_line(&test.broadcasts, &room, admin, "!bc list").await;
            assert!(
                list.markdown.contains("— vorbereitet — 0 / 1 zugestellt, 0 fehlgeschlagen"),
                "{}",
                list.markdown
            );
            let dry =
                run_with_body(&test.broadcasts, &room, admin, &format!("!bc edit {id} --dry-run"), "Neu")
                    .await;
            assert_eq!(
                dry.markdown,
                format!(
                    "Probelauf, nichts geändert: 0 zugestellte Kopien von {id} «Alle» würden bearbeitet; 1 noch \
                     nicht zugestellte bekämen den neuen Text."
                )
            );
            let poll = run_line(&test.broadcasts, &room, admin, &format!("!bc poll close {id}")).await;
            assert_eq!(poll, Answer::error(format!("{id} «Alle» ist keine Umfrage.")));
            let bob = ruma::user_id!("@bob:example.org");
            let targets = crate::broadcasts::audience::parse_targets(&["server".to_owned()]).unwrap();
            let refused = crate::broadcasts::audience::authorize(
                test.broadcasts.rooms.hs(),
                bob,
                Level::Broadcaster,
                &targets,
            )
            .await;
            assert_eq!(
                refused.unwrap_err().text(test.broadcasts.rooms.language()),
                "Nur Admins des Bots dürfen an `server` senden (alle auf dem Homeserver)."
            );
            let bad = crate::broadcasts::audience::parse_targets(&["alle".to_owned()]).unwrap_err();
            assert!(bad.text(Language::De).starts_with("`alle` bezeichnet keine Empfänger"), "{bad:?}");
            let cancel = run_line(&test.broadcasts, &room, admin, &format!("!bc cancel {id}")).await;
            assert_eq!(cancel, Answer::ok(format!("{id} «Alle» abgebrochen: 1 nicht zugestellt.")));
            let again = run_line(&test.broadcasts, &room, admin, &format!("!bc cancel {id}")).await;
            assert_eq!(again, Answer::error(format!("{id} ist abgebrochen: nichts abzubrechen.")));

            let many = vec!["@a:example.org"; send::MAX_AUDIENCE_WORDS + 1].join(" ");
            let answer =
                run_with_body(&test.broadcasts, &room, admin, &format!("!bc send {many}"), "Hallo").await;
            assert!(
                answer
                    .markdown
                    .starts_with("Zu viele Empfänger-Wörter: 1.001, höchstens 1.000 in einem Befehl."),
                "{answer:?}"
            );
        }

        /// Plural forms per language, as the answers use them.
        #[test]
        fn plural_forms_follow_the_language() {
            let copies = |language, count: i64| {
                crate::base::i18n::t!(language, "after-delivered-copies", count = count)
            };
            assert_eq!(copies(Language::De, 1), "1 zugestellte Kopie");
            assert_eq!(copies(Language::De, 2), "2 zugestellte Kopien");
            assert_eq!(copies(Language::De, 1000), "1.000 zugestellte Kopien");
            assert_eq!(copies(Language::En, 1), "1 delivered copy");
            assert_eq!(copies(Language::En, 1200), "1,200 delivered copies");
            assert_eq!(crate::base::i18n::t!(Language::De, "recipients", count = 1), "1 Empfänger");
            assert_eq!(crate::base::i18n::t!(Language::De, "recipients", count = 2), "2 Empfänger");
        }
    }
}
