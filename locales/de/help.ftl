# help: deutsche Texte (siehe src/i18n/mod.rs).
