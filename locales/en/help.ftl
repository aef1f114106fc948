# help: English texts (see src/i18n/mod.rs).
# `!bc help`: each command's summary (help-<command>), the details shown by `!bc help <command>`
# after the summary (help-<command>-details), and each argument's help (help-<command>-<argument>).
help-help = Show the commands, or the details of one
help-help-command = The command to explain
help-send = Prepare a broadcast: the lines after the command are the message
help-send-details =
    Audience words: @user:server (one person), #alias:server or !roomid (the joined members of a room or space), server (every active local user; admins only), search:<text> (every active local user whose ID or display name contains the text; admins only). Without a message, when the command replies to a message, that message is sent. Limits: the message at most { $bytes } bytes as a Matrix event (about as many characters of plain text), at most { $words } audience words (name a room or space for more).
help-send-audience = Who gets it: @user:server, #room:server, !roomid, server, or search:<text>
help-send-name = A name for the broadcast, shown in lists and replies (at most { $chars } characters)
help-send-default = Also send it to everyone who joins later (welcome message)
help-send-except = Leave these users out
help-send-recursive = Include the members of every room in a space's hierarchy
help-send-persona = Send it as this persona (a name under `personas:` in the config), from its own DMs
help-send-at = Send it at this time ("2026-12-01 09:00", or "09:00" for today) in broadcast.timezone
help-send-in = Send it after this long (30m, 2h, 1d)
help-send-yes = Start without waiting for confirmation
help-send-dry-run = Show who would get it and send nothing
help-confirm = Start a prepared broadcast
help-confirm-id = The broadcast, e.g. #12
help-cancel = Stop what is not yet delivered
help-cancel-id = The broadcast, e.g. #12
help-list = Recent broadcasts with their counts
help-status = Delivered, pending, failed (with reasons), replied and read counts of a broadcast
help-status-id = The broadcast, e.g. #12
help-edit = Replace the text in every recipient's copy (the new text on the following lines)
help-edit-details = Delivered copies are edited (clients show "(edited)"), copies not yet delivered go out with the new text, and a default welcomes people who join later with it.
help-edit-id = The broadcast, e.g. #12
help-edit-dry-run = Show how many copies would change and change nothing
help-redact = Retract every copy of a broadcast and cancel what is not delivered yet
help-redact-details = A default broadcast stops welcoming people who join.
help-redact-id = The broadcast, e.g. #12
help-redact-reason = Why, shown to recipients whose client shows reasons
help-redact-dry-run = Show how many copies would change and change nothing
help-poll = Polls: reply to a poll in this room with `send` to send it; close one here
help-poll-close = End a poll broadcast in every DM and post the final tally
help-poll-close-id = The broadcast, e.g. #12
help-poll-close-dry-run = Show how many DMs would change and change nothing
help-defaults = List default broadcasts (welcome messages)
help-default = Turn a default broadcast off or on again
help-default-switch = off or on
help-default-id = The broadcast, e.g. #12
help-audience = Count and sample an audience without sending anything
help-audience-audience = Who: @user:server, #room:server, !roomid, server, or search:<text>

# The headings clap writes in help and usage.
help-heading-usage = Usage:
help-heading-arguments = Arguments:
help-heading-options = Options:
help-heading-commands = Commands:
help-possible-values = possible values
# `!bc help`.
help-commands-title = **Commands**
help-one-command = Details of one command: `{ $prefix } help <command>`.
help-no-such-command = There is no command `{ $name }`. The commands are listed by `{ $prefix } help`.
# What `!bc` alone (without a command) says.
help-bc = A parsed command line
