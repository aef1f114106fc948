# e2ee: deutsche Texte (siehe src/i18n/mod.rs).
