# delivery: English texts (see src/i18n/mod.rs).

## Why a copy was not delivered, as `!bc status` shows it (recorded when it happens)

delivery-stopped-before = the bot stopped before sending it
delivery-stopped-during = the bot stopped during the send
delivery-opted-out = opted out
delivery-not-within = not delivered within { $hours } hours: { $error }
# Also for follow-ups (edits, retractions, poll ends).
delivery-gave-up = gave up after { $attempts } tries: { $error }
delivery-refused = the homeserver refused ({ $error })

## Told once to the admins (src/delivery.rs)

delivery-encrypted-dms = The homeserver makes my new DMs encrypted, and I cannot read encrypted messages: replies from those recipients cannot reach you (`!bc status` counts them). On Synapse, set `encryption_enabled_by_default_for_room_type: off` in homeserver.yaml and restart it; DMs made from then on are readable.
