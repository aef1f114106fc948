//! All integration tests, in one binary: against a real Synapse (`harness`), the command line
//! (`cli`), and the store on SQLite and PostgreSQL (`store`); `scaleout` runs delivery workers
//! as processes of their own, and signals the bot.

mod harness;

mod after_sending;
mod appservice_api;
mod broadcast;
mod cli;
mod control;
mod crash;
mod defaults;
mod e2ee;
mod e2ee_client;
mod faults;
mod hostile;
mod language;
mod msc4190;
mod personas;
mod replies;
mod scaleout;
mod secrets;
mod soak;
mod startup;
mod store;
