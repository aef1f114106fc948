# recipients: deutsche Texte (siehe src/i18n/mod.rs).
# Was der Bot Empfängern in ihren Direktchat schreibt, in der Sprache des Empfängers.

recipient-stopped = Sie erhalten von hier keine Rundsendungen mehr. Schreiben Sie `{ $start }`, um sie wieder zu erhalten.
recipient-started = Sie erhalten wieder Rundsendungen.
recipient-unread = Danke für Ihre Nachricht. Hier liest noch niemand mit, daher wurde sie nicht weitergeleitet.
# Die Bestätigung von `sprache de`, in der gewählten Sprache.
recipient-language-set = Ab jetzt schreibe ich Ihnen auf Deutsch.
recipient-language-unknown = Die Sprache „{ $code }“ spreche ich nicht. Schreiben Sie `sprache de` für Deutsch oder `sprache en` für Englisch.

# Direktchats, die ein Empfänger mit dem Bot begonnen hat.
dm-stranger-declined = Ich nehme Direktchats nur von Personen dieses Servers an oder von Personen, denen ich geschrieben habe.
dm-second-chat = Ich habe bereits einen Direktchat mit Ihnen; bitte schreiben Sie dort.
dm-not-private = Dies ist kein privater Chat zwischen uns beiden; schreiben Sie mir in einem Direktchat.
dm-encrypted = Dieser Chat ist verschlüsselt, und ich kann verschlüsselte Nachrichten (noch) nicht lesen, daher sehe ich nicht, was Sie hier schreiben. Ich schreibe Ihnen in einem eigenen Chat, in dem Sie antworten können.

# Warum eine Zustellung fehlschlug oder wartet (für Admins im Status einer Rundsendung).
dm-banned = der Empfänger ist aus seinem Direktchat mit dem Bot ausgesperrt
dm-not-private-after-crash = der nach einem Absturz gefundene Direktchat war nicht privat; ein neuer wird angelegt
