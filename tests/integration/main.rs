//! All integration tests, in one binary: against a real Synapse (`harness`), the command line
//! (`cli`), and the store on SQLite and PostgreSQL (`store`).

mod harness;

mod after_sending;
mod appservice_api;
mod binary;
mod broadcast;
mod cli;
mod control;
mod crash;
mod defaults;
mod hostile;
mod personas;
mod replies;
mod startup;
mod store;
