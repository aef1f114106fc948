# audience: English texts (see src/i18n/mod.rs).
audience-database-failed = The bot's database failed; see its log.
audience-empty-search = `{ $word }` searches for nothing: write the text after it, like `search:smith`
audience-bad-user = `{ $word }` is not a valid user ID (like @alice:example.org)
audience-bad-room = `{ $word }` is not a valid room alias or room ID (like #team:example.org)
audience-bad-word = `{ $word }` is not an audience: use @user:server, #room:server, !roomid, server or search:<text>
audience-bad-except = `{ $word }` after --except is not a user ID (like @bob:example.org)
audience-bad-alias = `{ $room }` is not a valid alias
audience-no-room = There is no room `{ $room }`.
audience-alias-not-resolved = The alias `{ $room }` was stored by an older version and is not looked up again; send the broadcast again.
audience-cannot-look-up = Cannot look up `{ $room }`: { $error }
audience-cannot-read-space = Cannot read the rooms of the space `{ $room }`: { $error }
audience-server-needs-admin = Only admins of the bot may send to `server` (everyone on the homeserver).
audience-search-needs-admin = Only admins of the bot may send to `search:{ $text }` (a search of every account on the homeserver).
audience-cannot-see-room = I cannot see `{ $room }` ({ $error }). Invite me to it first.
# $member: "yes" or "no"; $power: the sender's power level, $required: the level needed.
audience-power-too-low = You may only send to rooms and spaces where you are a member with power level { $required } or more (moderator); in `{ $room }` you have { $power }{ $member ->
    [yes] {""}
   *[no] {" "}and are not a member
}.
audience-user-does-not-exist = this user does not exist
audience-not-in-room = I am not in `{ $room }`, so I cannot see its members. Invite me to it (or make me a Synapse server admin).
audience-cannot-read-members = Cannot read the members of `{ $room }`: { $error }
audience-cannot-list-users = Cannot list the users of the homeserver: { $error }
audience-not-server-admin =
    To send to `server` or `search:…` I must be a Synapse server admin, and I am not. A homeserver admin can make me one with the admin API:

    ```
    curl -X PUT -H "Authorization: Bearer <an admin's access token>" { $address }/_synapse/admin/v2/users/{ $bot } -d '{"{"}"admin": true{"}"}'
    ```
audience-default-needs-a-room = `--default` needs a room, a space or `server` in the audience.
