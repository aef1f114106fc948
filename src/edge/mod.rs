//! The edge: where the homeserver and the people talk to the bot. The appservice HTTP API
//! (`appservice`: transactions into the inbox, queries), the health endpoints (`health`), the dispatcher that routes each
//! inbox event to its owner (`dispatch`), and the `!bc` commands (`commands`).

pub mod appservice;
pub mod commands;
pub mod dispatch;
pub mod health;
#[cfg(test)]
pub mod testing;
