# lifecycle: English texts (see src/i18n/mod.rs).

## Preparing a broadcast (src/lifecycle/mod.rs)

lifecycle-audience-unreadable = { $id } cannot be sent: its audience is unreadable ({ $error }).
# Follows the description of the audience, after a space.
lifecycle-left-out = Left out: { $rooms } (rooms of the space where you are not a member with power level { $level }).
lifecycle-dry-run = Dry run, nothing sent: { $who }
lifecycle-nobody = { $titled }: nobody to send to. { $who }
lifecycle-stopped-while-resolving = { $titled } was stopped while its audience was being resolved: nothing is sent.
lifecycle-database-failed-nothing-sent = The bot's database failed; nothing was sent.
# Follows the audience in a preview, after a space.
lifecycle-preview-at = It is to be sent at { $at }.
lifecycle-preview = **Preview of { $titled }**{ $from } — { $who }{ $when }

    The message:

    > { $quote }

    React with ✅ to this message or type `{ $prefix } confirm { $id }` to send it; `{ $prefix } cancel { $id }` to drop it.
# Follows the audience, after a space.
lifecycle-opted-out = { $count } opted out and will be skipped.
# "1,200 recipients: `@a`, `@b` and 1,198 more." (after a space)
lifecycle-audience-more = and { $count } more
# After the count of recipients, after a space.
lifecycle-no-audience = (no audience)
lifecycle-may-not-manage = { $id } was prepared by { $creator }, and you may not manage it: { $error }
lifecycle-cannot-start = { $id } cannot be started: it is { $state }.
lifecycle-scheduled = Scheduled { $titled } for { $at } (in { $length }). `{ $prefix } cancel { $id }` drops it.
lifecycle-sending = Sending { $titled }{ $from }.
# Who sends, after a space: a persona no longer configured, a user without a name, a named one.
lifecycle-from-lost-persona = from the persona `{ $persona }`, which is no longer configured
lifecycle-from-user = from `{ $user }`
lifecycle-from-named = from { $name } (`{ $user }`)
# Any command answer when the bot's own database fails.
database-failed = The bot's database failed; see the bot's log.

## Progress and summary (src/lifecycle/progress.rs)

progress-line = «{ $name }» { $id }: { $delivered } / { $total } delivered, { $failed } failed
# $took: progress-took or nothing.
progress-summary = «{ $name }» { $id } finished{ $took }: { $delivered } delivered, { $failed } failed, { $skipped } skipped
# After "finished", after a space; $seconds with one decimal.
progress-took = in { $seconds } s
progress-cancelled = , { $count } cancelled
progress-reasons = . Reasons: `!bc status { $id }`

## Scheduled broadcasts (src/lifecycle/schedule.rs)

# $answer: the start's answer ("Sending …."), after it a space.
schedule-late = { $answer } It was due at { $due }: { $late } late, because the bot was not running then.
# $answer: the start's answer without its final full stop.
schedule-on-time = { $answer } (scheduled for { $due }).

## Times (src/when.rs)

when-formats = `--at "YYYY-MM-DD HH:MM"` (or just `HH:MM` for today), or `--in` a duration like `30m`, `2h`, `1d`
when-unreadable-time = I cannot read the time `{ $text }`. Write { $formats }.
when-unreadable-duration = I cannot read the duration `{ $text }`. Write { $formats }.
when-not-future = { $at } is not in the future (it is { $now } now). Write { $formats }.
when-seconds = { $seconds } s
when-minutes = { $minutes } min
when-hours = { $hours } h
when-hours-minutes = { $hours } h { $minutes } min
when-days = { $days } d
when-days-hours = { $days } d { $hours } h

## Follow-ups (src/followup.rs)

followup-retracted = Retracted { $titled }: { $count ->
        [one] { $count } copy
       *[other] { $count } copies
    } removed
followup-poll-closed = Closed the poll { $titled }: ended in { $count ->
        [one] { $count } DM
       *[other] { $count } DMs
    }
followup-edited = Edited { $titled }: { $count ->
        [one] { $count } copy shows
       *[other] { $count } copies show
    } the new text
followup-skipped = , { $count } skipped (their DM gained a third member)
followup-failed = , { $count } failed (reasons: `!bc status { $id }`)

## Polls (src/poll.rs)

poll-answered = { $answered } of { $recipients } answered
# Sent to recipients into their DM when the poll is closed.
poll-ended-top = The poll has ended. Top answer: { $answer }
poll-ended-nobody = The poll has ended. Nobody answered.

## What a message is, in previews (src/message.rs)

message-image = an image ({ $body })
message-file = a file ({ $body })
message-video = a video ({ $body })
message-audio = an audio message ({ $body })
message-poll = a poll
# After a text cut to fit one event, after an empty line.
message-cut = … (cut: the first { $kept } of { $total } characters)
