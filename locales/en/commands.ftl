# commands: English texts (see src/i18n/mod.rs).
# Broadcast states, as `!bc list`, `!bc status` and refusals name them.
state-resolving = resolving
state-prepared = prepared
state-scheduled = scheduled
state-running = running
state-done = done
state-cancelled = cancelled
state-dry_run = dry_run
state-empty = empty

command-no-such-broadcast = There is no broadcast { $id } in this room.
command-too-long = The message is too long: { $chars } characters, { $bytes } bytes{ $more ->
    [yes] {" "}or more
   *[no] {""}
} as a Matrix event; at most { $most } bytes fit (an event holds at most 65,536 bytes, and an edit carries the message twice). Shorten it, or send a long text as a file.
command-not-a-broadcast-id = { $text } is not a broadcast number like #12

# Mistakes in a command line.
parse-unclosed-quote = A quote is not closed:
parse-usage-of-all = Usage: { $prefix } <COMMAND> … (the commands: `{ $prefix } help`)
parse-invalid-command = invalid command
parse-unexpected-argument = unexpected argument '{ $arg }' found
parse-unknown-command = unrecognized subcommand '{ $name }'
parse-value-missing = a value is required for '{ $arg }' but none was supplied
parse-invalid-value = invalid value '{ $value }' for '{ $arg }'
parse-invalid-value-because = invalid value '{ $value }' for '{ $arg }': { $reason }
parse-missing-arguments = the following required arguments were not provided:
parse-conflict = the argument '{ $arg }' cannot be used with '{ $other }'
parse-used-twice = the argument '{ $arg }' cannot be used multiple times
parse-tip-similar-command = tip: { $count ->
    [one] a similar subcommand exists
   *[other] some similar subcommands exist
}: { $names }
parse-tip-similar-argument = tip: { $count ->
    [one] a similar argument exists
   *[other] some similar arguments exist
}: { $names }
parse-tip-similar-value = tip: { $count ->
    [one] a similar value exists
   *[other] some similar values exist
}: { $names }
parse-tip-as-value = tip: to pass '{ $arg }' as a value, use '-- { $arg }'

# send, audience, confirm.
send-too-many-words = The audience has too many words: { $count }, at most { $most } in one command. Put the people into a room or space and name that: it is one word, however many members it has.
send-too-many-except = `--except` names too many users: { $count }, at most { $most } in one command.
send-name-too-long = The name is too long: { $count } characters, at most { $most }.
send-no-persona = There is no persona `{ $name }`: none is configured (`personas:` in the config).
send-unknown-persona = There is no persona `{ $name }`. The personas are { $personas }.
send-persona-not-allowed = You may not send as `{ $name }`: its `allowed` list in the config (`personas.{ $name }.allowed`) does not name you or your level.
send-cannot-read-reply = I cannot read the message this command replies to: { $error }
send-reply-has-no-content = The message this command replies to has no content (was it deleted?).
send-what-to-send =
    What should I send? Write the message on the lines after the command:
    ```
    { $prefix } send #team:example.org
    Hello {"{"}displayname{"}"}, …
    ```
    or reply to a message with the command to send that message.
send-reply-encrypted = The message this command replies to is encrypted, and my encryption is off.
send-cannot-decrypt-reply = I cannot decrypt the message this command replies to: { $error }
send-default-name = Broadcast
confirm-other-room = { $id } was prepared in another control room; confirm it there.
confirm-not-prepared = { $id } is { $state }, not waiting for confirmation.

# edit, redact, poll close.
after-retracted = { $broadcast } was retracted; nothing is left to change.
after-not-text = { $broadcast } is { $kind }: only text broadcasts can be edited. `{ $prefix } redact { $id }` retracts it.
after-what-new-text =
    What is the new text? Write it on the lines after the command:
    ```
    { $prefix } edit { $id }
    The new text …
    ```
after-delivered-copies = { $count ->
    [one] { $count } delivered copy
   *[other] { $count } delivered copies
}
after-edit-dry-run = Dry run, nothing changed: { $delivered } of { $broadcast } would be edited; { $waiting } not yet delivered would get the new text.
after-editing = Editing { $delivered } of { $broadcast }; { $waiting } not yet delivered get the new text.
after-editing-default = People who join later get the new text.
after-editing-report = I say here when every copy is edited.
after-redact-dry-run = Dry run, nothing changed: { $delivered } of { $broadcast } would be retracted and { $waiting } not yet delivered cancelled.
after-retracting = Retracting { $delivered } of { $broadcast }; { $cancelled } not yet delivered were cancelled.
after-retracting-default = It no longer welcomes people who join.
after-retracting-report = I say here when every copy is retracted.
after-not-a-poll = { $broadcast } is not a poll.
after-poll-closed-already = The poll { $broadcast } is closed already.
after-dms = { $count ->
    [one] { $count } DM
   *[other] { $count } DMs
}
after-close-dry-run = Dry run, nothing changed: the poll { $broadcast } would be ended in { $dms }.
after-closed =
    Closed the poll { $broadcast }; ending it in { $dms }. Answers from now on do not count.

    {"*"}*Final tally**: { $tally }

# list, status, cancel, defaults, default.
list-empty = No broadcasts yet.
list-title = **Recent broadcasts**
list-line = - { $broadcast } — { $state } — { $delivered } / { $total } delivered, { $failed } failed
state-scheduled-for = { $state } for { $time }
state-edited = , edited
state-poll-closed = , poll closed
state-retracted = , retracted
status-title = **{ $broadcast }** — { $state }
status-delivered = - delivered: { $count }
status-pending = - pending: { $count }
status-failed = - failed: { $count }
status-skipped = - skipped: { $count }
status-cancelled = - cancelled: { $count }
status-read = - read: { $count }
status-replied = - replied: { $count }
status-encrypted = - encrypted end to end: { $count }
status-no-device-yet = - cannot decrypt yet (no device to share the key with): { $count }
status-unreadable-replies = - DM is encrypted, replies cannot be read: { $count }
status-repliers = Replied: { $names }
status-failed-title = Failed
status-skipped-title = Skipped
status-followups-title = Copies that could not be changed (edit, retraction or poll end)
status-poll = **Poll**: { $tally }
cancel-nothing = { $id } is { $state }: nothing to cancel.
cancel-done = Cancelled { $broadcast }: { $count } not delivered.
cancel-changed-meanwhile = { $id } changed state meanwhile; see `status`.
defaults-none = No default broadcasts. `send … --default` makes one.
defaults-title = **Default broadcasts** (new people get them once)
defaults-line = - { $broadcast } — { $scopes } — { $active ->
    [yes] on
   *[no] off
} — { $count } received it
default-retracted = { $id } was retracted; it cannot welcome anyone again.
default-on = { $id } is a default again: people who join from now on get it.
default-off = { $id } is no longer a default: nobody else will get it.
default-not-a-default = { $id } is not a default broadcast (see `defaults`).
