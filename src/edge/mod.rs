//! The edge: where the homeserver and the people talk to the bot. The appservice HTTP API
//! (`appservice`: transactions into the inbox, queries, health), the dispatcher that routes each
//! inbox event to its owner (`dispatch`), and the `!bc` commands (`commands`).

pub mod appservice;
pub mod commands;
pub mod dispatch;
#[cfg(test)]
pub mod testing;
