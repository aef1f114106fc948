# delivery: deutsche Texte (siehe src/i18n/mod.rs).

## Warum eine Kopie nicht zugestellt wurde, wie `!bc status` es zeigt

delivery-stopped-before = der Bot wurde vor dem Senden beendet
delivery-stopped-during = der Bot wurde während des Sendens beendet
delivery-opted-out = abgemeldet
delivery-not-within = nicht innerhalb von { $hours } Stunden zugestellt: { $error }
delivery-gave-up = nach { $attempts } Versuchen aufgegeben: { $error }
delivery-refused = der Homeserver hat abgelehnt ({ $error })

## Einmal den Admins gesagt (src/delivery.rs)

delivery-encrypted-dms = Der Homeserver verschlüsselt meine neuen Direktnachrichten, und ich kann verschlüsselte Nachrichten nicht lesen: Antworten dieser Empfänger erreichen Sie nicht (`!bc status` zählt sie). Setzen Sie bei Synapse `encryption_enabled_by_default_for_room_type: off` in homeserver.yaml und starten Sie ihn neu; ab dann erstellte Direktnachrichten sind lesbar.
