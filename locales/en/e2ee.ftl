# e2ee: English texts (see src/i18n/mod.rs).
