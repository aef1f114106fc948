# help: German texts (see src/i18n/mod.rs).
# `!bc help`: each command's summary (help-<command>), the details shown by `!bc help <command>`
# after the summary (help-<command>-details), and each argument's help (help-<command>-<argument>).
help-help = Zeigt die Befehle oder die Einzelheiten eines Befehls
help-help-command = Der Befehl, der erklärt werden soll
help-send = Bereitet eine Rundsendung vor: die Zeilen nach dem Befehl sind die Nachricht
help-send-details =
    Empfänger-Wörter: @user:server (eine Person), #alias:server oder !roomid (die beigetretenen Mitglieder eines Raums oder Spaces), server (alle aktiven lokalen Benutzer; nur für Admins), search:<text> (alle aktiven lokalen Benutzer, deren ID oder Anzeigename den Text enthält; nur für Admins). Ohne Nachricht wird, wenn der Befehl auf eine Nachricht antwortet, diese Nachricht gesendet. Grenzen: die Nachricht höchstens { $bytes } Bytes als Matrix-Event (etwa so viele Zeichen reiner Text), höchstens { $words } Empfänger-Wörter (für mehr nennen Sie einen Raum oder Space).
help-send-audience = Wer sie erhält: @user:server, #room:server, !roomid, server oder search:<text>
help-send-name = Ein Name für die Rundsendung, in Listen und Antworten gezeigt (höchstens { $chars } Zeichen)
help-send-default = Auch allen senden, die später beitreten (Willkommensnachricht)
help-send-except = Diese Benutzer auslassen
help-send-recursive = Die Mitglieder aller Räume in der Hierarchie eines Spaces einschließen
help-send-persona = Als diese Persona senden (ein Name unter `personas:` in der Konfiguration), aus ihren eigenen Direktnachrichten
help-send-at = Zu dieser Zeit senden ("2026-12-01 09:00" oder "09:00" für heute) in broadcast.timezone
help-send-in = Nach dieser Dauer senden (30m, 2h, 1d)
help-send-yes = Ohne auf Bestätigung zu warten starten
help-send-dry-run = Zeigen, wer sie erhielte, und nichts senden
help-confirm = Startet eine vorbereitete Rundsendung
help-confirm-id = Die Rundsendung, z. B. #12
help-cancel = Stoppt, was noch nicht zugestellt ist
help-cancel-id = Die Rundsendung, z. B. #12
help-list = Letzte Rundsendungen mit ihren Zahlen
help-status = Zugestellt, ausstehend, fehlgeschlagen (mit Gründen), beantwortet und gelesen: die Zahlen einer Rundsendung
help-status-id = Die Rundsendung, z. B. #12
help-edit = Ersetzt den Text in der Kopie jedes Empfängers (der neue Text in den folgenden Zeilen)
help-edit-details = Zugestellte Kopien werden bearbeitet (Clients zeigen "(bearbeitet)"), noch nicht zugestellte Kopien gehen mit dem neuen Text hinaus, und eine Standard-Rundsendung begrüßt später Beitretende damit.
help-edit-id = Die Rundsendung, z. B. #12
help-edit-dry-run = Zeigen, wie viele Kopien sich ändern würden, und nichts ändern
help-redact = Zieht jede Kopie einer Rundsendung zurück und bricht ab, was noch nicht zugestellt ist
help-redact-details = Eine Standard-Rundsendung begrüßt dann niemanden mehr, der beitritt.
help-redact-id = Die Rundsendung, z. B. #12
help-redact-reason = Warum; Empfängern gezeigt, deren Client Gründe anzeigt
help-redact-dry-run = Zeigen, wie viele Kopien sich ändern würden, und nichts ändern
help-poll = Umfragen: antworten Sie in diesem Raum mit `send` auf eine Umfrage, um sie zu senden; schließen Sie sie hier
help-poll-close = Beendet eine Umfrage-Rundsendung in jeder Direktnachricht und zeigt das Endergebnis
help-poll-close-id = Die Rundsendung, z. B. #12
help-poll-close-dry-run = Zeigen, wie viele Direktnachrichten sich ändern würden, und nichts ändern
help-defaults = Listet die Standard-Rundsendungen (Willkommensnachrichten)
help-default = Schaltet eine Standard-Rundsendung aus oder wieder ein
help-default-switch = off oder on
help-default-id = Die Rundsendung, z. B. #12
help-audience = Zählt die Empfänger und zeigt Beispiele, ohne etwas zu senden
help-audience-audience = Wer: @user:server, #room:server, !roomid, server oder search:<text>

# The headings clap writes in help and usage.
help-heading-usage = Aufruf:
help-heading-arguments = Argumente:
help-heading-options = Optionen:
help-heading-commands = Befehle:
help-possible-values = mögliche Werte
# `!bc help`.
help-commands-title = **Befehle**
help-one-command = Einzelheiten eines Befehls: `{ $prefix } help <Befehl>`.
help-no-such-command = Es gibt keinen Befehl `{ $name }`. `{ $prefix } help` listet die Befehle.
# What `!bc` alone (without a command) says.
help-bc = Ein Befehl fehlt
