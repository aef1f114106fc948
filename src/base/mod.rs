//! The base layer: what every layer above stands on, and which knows nothing of them. The only
//! outbound client (`matrix`), the database (`store`), end-to-end encryption (`e2ee`), the
//! files that hold secrets (`files`), the config file and its checks (`config`, `permissions`,
//! `registration`), texts in the admins' and recipients' languages (`i18n`), times (`when`),
//! logs and metrics (`telemetry`), and what a broadcast sends (`message`, `poll`).

pub mod config;
pub mod e2ee;
pub mod files;
pub mod i18n;
pub mod matrix;
pub mod message;
pub mod permissions;
pub mod poll;
pub mod registration;
pub mod store;
pub mod telemetry;
pub mod when;
