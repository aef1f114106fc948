# audience: German texts (see src/i18n/mod.rs).
audience-database-failed = Die Datenbank des Bots ist fehlgeschlagen; siehe sein Log.
audience-empty-search = `{ $word }` sucht nach nichts: schreiben Sie den Text dahinter, etwa `search:schmidt`
audience-bad-user = `{ $word }` ist keine gültige Benutzer-ID (wie @alice:example.org)
audience-bad-room = `{ $word }` ist kein gültiger Raum-Alias und keine gültige Raum-ID (wie #team:example.org)
audience-bad-word = `{ $word }` bezeichnet keine Empfänger: verwenden Sie @user:server, #room:server, !roomid, server oder search:<text>
audience-bad-except = `{ $word }` nach --except ist keine Benutzer-ID (wie @bob:example.org)
audience-bad-alias = `{ $room }` ist kein gültiger Alias
audience-no-room = Es gibt keinen Raum `{ $room }`.
audience-alias-not-resolved = Der Alias `{ $room }` wurde von einer älteren Version gespeichert und wird nicht erneut aufgelöst; sende die Rundsendung bitte neu.
audience-cannot-look-up = `{ $room }` kann nicht nachgeschlagen werden: { $error }
audience-cannot-read-space = Die Räume des Spaces `{ $room }` können nicht gelesen werden: { $error }
audience-server-needs-admin = Nur Admins des Bots dürfen an `server` senden (alle auf dem Homeserver).
audience-search-needs-admin = Nur Admins des Bots dürfen an `search:{ $text }` senden (eine Suche über alle Konten des Homeservers).
audience-cannot-see-room = Ich kann `{ $room }` nicht sehen ({ $error }). Laden Sie mich zuerst ein.
# $member: "yes" or "no"; $power: the sender's power level, $required: the level needed.
audience-power-too-low = Sie dürfen nur an Räume und Spaces senden, in denen Sie Mitglied mit Berechtigungsstufe { $required } oder höher (Moderator) sind; in `{ $room }` haben Sie { $power }{ $member ->
    [yes] {""}
   *[no] {" "}und sind kein Mitglied
}.
audience-user-does-not-exist = diesen Benutzer gibt es nicht
audience-not-in-room = Ich bin nicht in `{ $room }` und kann seine Mitglieder daher nicht sehen. Laden Sie mich ein (oder machen Sie mich zum Synapse-Server-Admin).
audience-cannot-read-members = Die Mitglieder von `{ $room }` können nicht gelesen werden: { $error }
audience-cannot-list-users = Die Benutzer des Homeservers können nicht aufgelistet werden: { $error }
audience-not-server-admin =
    Um an `server` oder `search:…` zu senden, muss ich Synapse-Server-Admin sein, und das bin ich nicht. Ein Admin des Homeservers kann mich über die Admin-API dazu machen:

    ```
    curl -X PUT -H "Authorization: Bearer <Zugriffstoken eines Admins>" { $address }/_synapse/admin/v2/users/{ $bot } -d '{"{"}"admin": true{"}"}'
    ```
audience-default-needs-a-room = `--default` braucht einen Raum, einen Space oder `server` unter den Empfängern.
