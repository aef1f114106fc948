# rooms: English texts (see src/i18n/mod.rs).
# Control rooms, and replies relayed into them: in the language of the config.

control-room-adopted = This is now a control room for broadcasts. Type `{ $prefix } help` to see what I can do.
control-room-open-joined = I joined to see who is here. This room is { $open }, so it is not a control room: replies to broadcasts are private and are only posted in closed rooms (invite-only, not readable by anyone).
control-room-encrypted = This room is encrypted, and I cannot read encrypted messages (yet), so it cannot be a control room. Create a room with encryption turned off (in Element: untick "Enable end-to-end encryption" when creating it; it cannot be turned off later), invite me there and type `{ $prefix } help`.
control-room-opened = This room is no longer a control room: it is now { $open }, and replies to broadcasts are private. Make it invite-only and not world-readable, then invite me again, or use another private room.
# How a room is open to others ($how: public, knock, restricted, world-readable, other).
room-open = { $how ->
    [public] public
    [knock] open to knocks
    [restricted] open to the members of other rooms
    [world-readable] readable by anyone
   *[other] not invite-only
}
invite-not-admin = Only admins of this bot can invite it (see `permissions` in its config).
dispatch-outside-control-room = I only take commands in control rooms. Invite me to a private, unencrypted room, or list a room in `broadcast.control_rooms`, and type `{ $prefix } help` there.
dispatch-not-allowed = You are not allowed to use this bot: your level is **{ $level }** and commands need **broadcaster**. An admin of the bot can change `permissions` in its config.

# The first message of a thread of replies ($id: #12).
relay-thread-title = Replies from “{ $name }” ({ $user }) to «{ $broadcast }» { $id }
relay-thread-title-no-broadcast = Messages from “{ $name }” ({ $user }), not about a broadcast
relay-flood = { $user } sent more than { $count ->
    [one] { $count } message
   *[other] { $count } messages
} within a minute; the rest of this minute's are not passed on (they stay in their DM).
relay-not-into-plain-room = Replies written in encrypted DMs are not relayed into this room: it is not encrypted, and they would be stored on the homeserver in clear. They stay in the DMs. Send broadcasts from an encrypted control room to read them here, or set broadcast.relay_encrypted_to_plain_rooms: true.
relay-not-delivered = Not delivered: { $reason }
relay-no-dm = { $user } has no DM with me
relay-dm-left = { $user } has left their DM with me
relay-dm-third-member = the DM of { $user } has a third member, so nothing is sent there
relay-answer-empty = the answer has no content
context-persona-gone = the persona { $name } is no longer in the config (personas:)
