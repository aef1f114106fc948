# commands: German texts (see src/i18n/mod.rs).
# Broadcast states, as `!bc list`, `!bc status` and refusals name them.
state-resolving = wird aufgelöst
state-prepared = vorbereitet
state-scheduled = geplant
state-running = läuft
state-done = fertig
state-cancelled = abgebrochen
state-dry_run = Probelauf
state-empty = leer

command-no-such-broadcast = In diesem Raum gibt es keine Rundsendung { $id }.
command-too-long = Die Nachricht ist zu lang: { $chars } Zeichen, { $bytes } Bytes{ $more ->
    [yes] {" "}oder mehr
   *[no] {""}
} als Matrix-Event; höchstens { $most } Bytes passen (ein Event fasst höchstens 65.536 Bytes, und eine Bearbeitung enthält die Nachricht zweimal). Kürzen Sie sie, oder senden Sie einen langen Text als Datei.
command-not-a-broadcast-id = { $text } ist keine Rundsendungsnummer wie #12

# Mistakes in a command line.
parse-unclosed-quote = Ein Anführungszeichen ist nicht geschlossen:
parse-usage-of-all = Aufruf: { $prefix } <BEFEHL> … (die Befehle: `{ $prefix } help`)
parse-invalid-command = ungültiger Befehl
parse-unexpected-argument = unerwartetes Argument '{ $arg }'
parse-unknown-command = unbekannter Befehl '{ $name }'
parse-value-missing = '{ $arg }' braucht einen Wert, aber es wurde keiner angegeben
parse-invalid-value = ungültiger Wert '{ $value }' für '{ $arg }'
parse-invalid-value-because = ungültiger Wert '{ $value }' für '{ $arg }': { $reason }
parse-missing-arguments = folgende Pflichtargumente fehlen:
parse-conflict = das Argument '{ $arg }' kann nicht zusammen mit '{ $other }' verwendet werden
parse-used-twice = das Argument '{ $arg }' kann nicht mehrfach verwendet werden
parse-tip-similar-command = Tipp: { $count ->
    [one] ein ähnlicher Befehl existiert
   *[other] ähnliche Befehle existieren
}: { $names }
parse-tip-similar-argument = Tipp: { $count ->
    [one] ein ähnliches Argument existiert
   *[other] ähnliche Argumente existieren
}: { $names }
parse-tip-similar-value = Tipp: { $count ->
    [one] ein ähnlicher Wert existiert
   *[other] ähnliche Werte existieren
}: { $names }
parse-tip-as-value = Tipp: um '{ $arg }' als Wert zu übergeben, schreiben Sie '-- { $arg }'

# send, audience, confirm.
send-too-many-words = Zu viele Empfänger-Wörter: { $count }, höchstens { $most } in einem Befehl. Nehmen Sie die Personen in einen Raum oder Space auf und nennen Sie diesen: das ist ein Wort, egal wie viele Mitglieder er hat.
send-too-many-except = `--except` nennt zu viele Benutzer: { $count }, höchstens { $most } in einem Befehl.
send-name-too-long = Der Name ist zu lang: { $count } Zeichen, höchstens { $most }.
send-no-persona = Es gibt keine Persona `{ $name }`: keine ist konfiguriert (`personas:` in der Konfiguration).
send-unknown-persona = Es gibt keine Persona `{ $name }`. Die Personas sind { $personas }.
send-persona-not-allowed = Du darfst nicht als `{ $name }` senden: Die Liste `allowed` in der Konfiguration (`personas.{ $name }.allowed`) nennt weder dich noch deine Stufe.
send-cannot-read-reply = Ich kann die Nachricht nicht lesen, auf die dieser Befehl antwortet: { $error }
send-reply-has-no-content = Die Nachricht, auf die dieser Befehl antwortet, hat keinen Inhalt (wurde sie gelöscht?).
send-what-to-send =
    Was soll ich senden? Schreiben Sie die Nachricht in die Zeilen nach dem Befehl:
    ```
    { $prefix } send #team:example.org
    Hallo {"{"}displayname{"}"}, …
    ```
    oder antworten Sie mit dem Befehl auf eine Nachricht, um diese Nachricht zu senden.
send-reply-encrypted = Die Nachricht, auf die dieser Befehl antwortet, ist verschlüsselt, und meine Verschlüsselung ist aus.
send-cannot-decrypt-reply = Ich kann die Nachricht nicht entschlüsseln, auf die dieser Befehl antwortet: { $error }
send-default-name = Rundsendung
confirm-other-room = { $id } wurde in einem anderen Steuerraum vorbereitet; bestätigen Sie sie dort.
confirm-not-prepared = { $id } ist { $state } und wartet nicht auf Bestätigung.

# edit, redact, poll close.
after-retracted = { $broadcast } wurde zurückgezogen; es gibt nichts mehr zu ändern.
after-not-text = { $broadcast } ist { $kind }: nur Text-Rundsendungen können bearbeitet werden. `{ $prefix } redact { $id }` zieht sie zurück.
after-what-new-text =
    Wie lautet der neue Text? Schreiben Sie ihn in die Zeilen nach dem Befehl:
    ```
    { $prefix } edit { $id }
    Der neue Text …
    ```
after-delivered-copies = { $count ->
    [one] { $count } zugestellte Kopie
   *[other] { $count } zugestellte Kopien
}
after-edit-dry-run = Probelauf, nichts geändert: { $delivered } von { $broadcast } würden bearbeitet; { $waiting } noch nicht zugestellte bekämen den neuen Text.
after-editing = Bearbeite { $delivered } von { $broadcast }; { $waiting } noch nicht zugestellte bekommen den neuen Text.
after-editing-default = Wer später beitritt, bekommt den neuen Text.
after-editing-report = Ich melde mich hier, wenn jede Kopie bearbeitet ist.
after-redact-dry-run = Probelauf, nichts geändert: { $delivered } von { $broadcast } würden zurückgezogen und { $waiting } noch nicht zugestellte abgebrochen.
after-retracting = Ziehe { $delivered } von { $broadcast } zurück; { $cancelled } noch nicht zugestellte wurden abgebrochen.
after-retracting-default = Sie begrüßt niemanden mehr, der beitritt.
after-retracting-report = Ich melde mich hier, wenn jede Kopie zurückgezogen ist.
after-not-a-poll = { $broadcast } ist keine Umfrage.
after-poll-closed-already = Die Umfrage { $broadcast } ist bereits geschlossen.
after-dms = { $count ->
    [one] { $count } Direktnachricht
   *[other] { $count } Direktnachrichten
}
after-close-dry-run = Probelauf, nichts geändert: die Umfrage { $broadcast } würde in { $dms } beendet.
after-closed =
    Die Umfrage { $broadcast } ist geschlossen; ich beende sie in { $dms }. Antworten zählen ab jetzt nicht mehr.

    {"*"}*Endergebnis**: { $tally }

# list, status, cancel, defaults, default.
list-empty = Noch keine Rundsendungen.
list-title = **Letzte Rundsendungen**
list-line = - { $broadcast } — { $state } — { $delivered } / { $total } zugestellt, { $failed } fehlgeschlagen
state-scheduled-for = { $state } für { $time }
state-edited = , bearbeitet
state-poll-closed = , Umfrage geschlossen
state-retracted = , zurückgezogen
status-title = **{ $broadcast }** — { $state }
status-delivered = - zugestellt: { $count }
status-pending = - ausstehend: { $count }
status-failed = - fehlgeschlagen: { $count }
status-skipped = - übersprungen: { $count }
status-cancelled = - abgebrochen: { $count }
status-read = - gelesen: { $count }
status-replied = - beantwortet: { $count }
status-encrypted = - Ende-zu-Ende-verschlüsselt: { $count }
status-no-device-yet = - noch nicht entschlüsselbar (kein Gerät, mit dem der Schlüssel geteilt werden kann): { $count }
status-unreadable-replies = - Direktnachricht verschlüsselt, Antworten nicht lesbar: { $count }
status-repliers = Geantwortet: { $names }
status-failed-title = Fehlgeschlagen
status-skipped-title = Übersprungen
status-followups-title = Kopien, die nicht geändert werden konnten (Bearbeitung, Zurückziehen oder Umfrage-Ende)
status-poll = **Umfrage**: { $tally }
cancel-nothing = { $id } ist { $state }: nichts abzubrechen.
cancel-done = { $broadcast } abgebrochen: { $count } nicht zugestellt.
cancel-changed-meanwhile = Der Zustand von { $id } hat sich inzwischen geändert; siehe `status`.
defaults-none = Keine Standard-Rundsendungen. `send … --default` erstellt eine.
defaults-title = **Standard-Rundsendungen** (neue Personen bekommen sie einmal)
defaults-line = - { $broadcast } — { $scopes } — { $active ->
    [yes] an
   *[no] aus
} — { $count ->
    [one] { $count } hat sie erhalten
   *[other] { $count } haben sie erhalten
}
default-retracted = { $id } wurde zurückgezogen; sie kann niemanden mehr begrüßen.
default-on = { $id } ist wieder eine Standard-Rundsendung: wer ab jetzt beitritt, bekommt sie.
default-off = { $id } ist keine Standard-Rundsendung mehr: niemand sonst bekommt sie.
default-not-a-default = { $id } ist keine Standard-Rundsendung (siehe `defaults`).
