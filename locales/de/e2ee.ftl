# e2ee: deutsche Texte (siehe src/i18n/mod.rs).

e2ee-no-device-yet = wartet: Der Empfänger hat noch kein Gerät, das sie entschlüsseln könnte
