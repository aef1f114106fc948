# rooms: deutsche Texte (siehe src/i18n/mod.rs).
# Steuerräume und die dorthin weitergeleiteten Antworten: in der Sprache der Konfiguration.

control-room-adopted = Dies ist jetzt ein Steuerraum für Rundsendungen. Schreiben Sie `{ $prefix } help`, um zu sehen, was ich kann.
control-room-open-joined = Ich bin beigetreten, um zu sehen, wer hier ist. Dieser Raum ist { $open }, daher ist er kein Steuerraum: Antworten auf Rundsendungen sind vertraulich und werden nur in geschlossenen Räumen gepostet (nur auf Einladung, für niemanden sonst lesbar).
control-room-encrypted = Dieser Raum ist verschlüsselt, und ich kann verschlüsselte Nachrichten (noch) nicht lesen, daher kann er kein Steuerraum sein. Erstellen Sie einen Raum ohne Verschlüsselung (in Element: beim Erstellen „Ende-zu-Ende-Verschlüsselung aktivieren“ abwählen; sie lässt sich später nicht mehr ausschalten), laden Sie mich dorthin ein und schreiben Sie `{ $prefix } help`.
control-room-opened = Dieser Raum ist kein Steuerraum mehr: Er ist jetzt { $open }, und Antworten auf Rundsendungen sind vertraulich. Machen Sie ihn wieder nur auf Einladung zugänglich und nicht für alle lesbar und laden Sie mich dann erneut ein, oder verwenden Sie einen anderen privaten Raum.
# Wie offen ein Raum für andere ist ($how: public, knock, restricted, world-readable, other).
room-open = { $how ->
    [public] öffentlich
    [knock] offen für Beitrittsanfragen
    [restricted] offen für die Mitglieder anderer Räume
    [world-readable] für alle lesbar
   *[other] nicht nur auf Einladung zugänglich
}
invite-not-admin = Nur Admins dieses Bots können ihn einladen (siehe `permissions` in seiner Konfiguration).
dispatch-outside-control-room = Ich nehme Befehle nur in Steuerräumen an. Laden Sie mich in einen privaten, unverschlüsselten Raum ein oder tragen Sie einen Raum in `broadcast.control_rooms` ein, und schreiben Sie dort `{ $prefix } help`.
dispatch-not-allowed = Sie dürfen diesen Bot nicht verwenden: Ihre Stufe ist **{ $level }**, und Befehle erfordern **broadcaster**. Ein Admin des Bots kann `permissions` in seiner Konfiguration ändern.

# Die erste Nachricht eines Threads mit Antworten ($id: #12).
relay-thread-title = Antworten von „{ $name }“ ({ $user }) auf »{ $broadcast }« { $id }
relay-thread-title-no-broadcast = Nachrichten von „{ $name }“ ({ $user }), nicht zu einer Rundsendung
relay-flood = { $user } hat innerhalb einer Minute mehr als { $count ->
    [one] { $count } Nachricht
   *[other] { $count } Nachrichten
} gesendet; die weiteren dieser Minute werden nicht weitergeleitet (sie bleiben im Direktchat).
relay-not-into-plain-room = Antworten aus verschlüsselten Direktchats werden nicht in diesen Raum weitergeleitet: er ist nicht verschlüsselt, und sie lägen unverschlüsselt auf dem Homeserver. Sie bleiben in den Direktchats. Senden Sie Rundsendungen aus einem verschlüsselten Steuerraum, um sie hier zu lesen, oder setzen Sie broadcast.relay_encrypted_to_plain_rooms: true.
relay-not-delivered = Nicht zugestellt: { $reason }
relay-no-dm = { $user } hat keinen Direktchat mit mir
relay-dm-left = { $user } hat den Direktchat mit mir verlassen
relay-dm-third-member = im Direktchat von { $user } ist eine dritte Person, daher wird dort nichts gesendet
relay-answer-empty = die Antwort hat keinen Inhalt
context-persona-gone = die Persona { $name } steht nicht mehr in der Konfiguration (personas:)
