# recipients: English texts (see src/i18n/mod.rs).
# What the bot writes to a recipient in their DM, in the recipient's language.

recipient-stopped = You will get no more broadcasts from here. Write `{ $start }` to get them again.
recipient-started = You will get broadcasts again.
recipient-unread = Thanks for your message. Nobody reads messages here yet, so it was not passed on.
# The confirmation of `language en`, in the language chosen.
recipient-language-set = From now on I will write to you in English.
recipient-language-unknown = I do not speak “{ $code }”. Write `language en` for English or `language de` for German.

# Direct chats a recipient opened with the bot.
dm-stranger-declined = I only take direct chats from people of this server, or from people I have written to.
dm-second-chat = I already have a direct chat with you; please write there.
dm-not-private = This is not a private chat between the two of us; write to me in a direct chat.
dm-encrypted = This chat is encrypted and I cannot read encrypted messages (yet), so I will not see what you write here. I will write to you in a chat of my own, where you can answer.

# Why a delivery failed or waits (shown to admins in the status of a broadcast).
dm-banned = the recipient is banned from their DM with the bot
dm-not-private-after-crash = the DM found after a crash was not private; a new one is made
