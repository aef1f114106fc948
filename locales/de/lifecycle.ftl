# lifecycle: deutsche Texte (siehe src/i18n/mod.rs).

## Eine Rundsendung vorbereiten (src/lifecycle/mod.rs)

lifecycle-audience-unreadable = { $id } kann nicht gesendet werden: Die Empfängerangabe ist unlesbar ({ $error }).
lifecycle-left-out = Ausgelassen: { $rooms } (Räume des Space, in denen Sie kein Mitglied mit Berechtigungsstufe { $level } sind).
lifecycle-dry-run = Probelauf, nichts gesendet: { $who }
lifecycle-nobody = { $titled }: niemand, an den gesendet werden könnte. { $who }
lifecycle-stopped-while-resolving = { $titled } wurde angehalten, während die Empfänger ermittelt wurden: Es wird nichts gesendet.
lifecycle-database-failed-nothing-sent = Die Datenbank des Bots ist ausgefallen; nichts wurde gesendet.
lifecycle-preview-at = Sie wird am { $at } gesendet.
lifecycle-preview = **Vorschau von { $titled }**{ $from } — { $who }{ $when }

    Die Nachricht:

    > { $quote }

    Reagieren Sie mit ✅ auf diese Nachricht oder schreiben Sie `{ $prefix } confirm { $id }`, um sie zu senden; `{ $prefix } cancel { $id }` verwirft sie.
lifecycle-opted-out = { $count ->
        [one] { $count } Empfänger hat sich abgemeldet und wird übersprungen.
       *[other] { $count } Empfänger haben sich abgemeldet und werden übersprungen.
    }
lifecycle-audience-more = und { $count } weitere
lifecycle-no-audience = (keine Empfängerangabe)
lifecycle-may-not-manage = { $id } wurde von { $creator } vorbereitet, und Sie dürfen sie nicht verwalten: { $error }
lifecycle-cannot-start = { $id } kann nicht gestartet werden: Sie ist im Zustand „{ $state }“.
lifecycle-scheduled = { $titled } ist für { $at } geplant (in { $length }). `{ $prefix } cancel { $id }` verwirft sie.
lifecycle-sending = Sende { $titled }{ $from }.
lifecycle-from-lost-persona = als Persona `{ $persona }`, die nicht mehr konfiguriert ist
lifecycle-from-user = als `{ $user }`
lifecycle-from-named = als { $name } (`{ $user }`)
database-failed = Die Datenbank des Bots ist ausgefallen; Einzelheiten stehen im Log des Bots.

## Fortschritt und Zusammenfassung (src/lifecycle/progress.rs)

progress-line = «{ $name }» { $id }: { $delivered } / { $total } zugestellt, { $failed } fehlgeschlagen
progress-summary = «{ $name }» { $id } beendet{ $took }: { $delivered } zugestellt, { $failed } fehlgeschlagen, { $skipped } übersprungen
progress-took = in { $seconds } s
progress-cancelled = , { $count } abgebrochen
progress-reasons = . Gründe: `!bc status { $id }`

## Geplante Rundsendungen (src/lifecycle/schedule.rs)

schedule-late = { $answer } Sie war für { $due } geplant: { $late } zu spät, weil der Bot zu der Zeit nicht lief.
schedule-on-time = { $answer } (geplant für { $due }).

## Zeiten (src/when.rs)

when-formats = `--at "JJJJ-MM-TT HH:MM"` (oder nur `HH:MM` für heute) oder `--in` mit einer Dauer wie `30m`, `2h`, `1d`
when-unreadable-time = Ich kann die Zeit `{ $text }` nicht lesen. Schreiben Sie { $formats }.
when-unreadable-duration = Ich kann die Dauer `{ $text }` nicht lesen. Schreiben Sie { $formats }.
when-not-future = { $at } liegt nicht in der Zukunft (jetzt ist es { $now }). Schreiben Sie { $formats }.
when-seconds = { $seconds } s
when-minutes = { $minutes } min
when-hours = { $hours } h
when-hours-minutes = { $hours } h { $minutes } min
when-days = { $days ->
        [one] { $days } Tag
       *[other] { $days } Tage
    }
when-days-hours = { $days ->
        [one] { $days } Tag
       *[other] { $days } Tage
    } { $hours } h

## Folgeaktionen (src/followup.rs)

followup-retracted = { $titled } zurückgezogen: { $count ->
        [one] { $count } Kopie
       *[other] { $count } Kopien
    } entfernt
followup-poll-closed = Umfrage { $titled } geschlossen: in { $count ->
        [one] { $count } Direktnachricht
       *[other] { $count } Direktnachrichten
    } beendet
followup-edited = { $titled } bearbeitet: { $count ->
        [one] { $count } Kopie zeigt
       *[other] { $count } Kopien zeigen
    } den neuen Text
followup-skipped = , { $count } übersprungen (ihr Direktchat hat ein drittes Mitglied bekommen)
followup-failed = , { $count } fehlgeschlagen (Gründe: `!bc status { $id }`)

## Umfragen (src/poll.rs)

poll-answered = Geantwortet: { $answered } von { $recipients }
poll-ended-top = Die Umfrage ist beendet. Häufigste Antwort: { $answer }
poll-ended-nobody = Die Umfrage ist beendet. Niemand hat geantwortet.

## Was eine Nachricht ist, in Vorschauen (src/message.rs)

message-image = ein Bild ({ $body })
message-file = eine Datei ({ $body })
message-video = ein Video ({ $body })
message-audio = eine Audionachricht ({ $body })
message-poll = eine Umfrage
message-cut = … (gekürzt: die ersten { $kept } von { $total } Zeichen)
