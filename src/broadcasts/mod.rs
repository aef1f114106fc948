//! The broadcasts layer: a broadcast's life from its draft to its end. Create, resolve, preview,
//! schedule or start, progress and finish (`lifecycle`); who is addressed and who is left out
//! (`audience`); welcomes for people who join later (`defaults`); edits, retractions and poll
//! ends of delivered copies (`followup`). It hands copies to the delivery layer's queue.

pub mod audience;
pub mod defaults;
pub mod followup;
pub mod lifecycle;
#[cfg(test)]
pub mod testing;

use std::sync::Arc;

use crate::{base::config::Config, delivery::Delivery, rooms::Rooms};

/// The broadcasts layer's service: a broadcast's life, over the rooms it is written in and the
/// delivery queue its copies go into.
pub struct Broadcasts {
    pub rooms: Arc<Rooms>,
    pub delivery: Arc<Delivery>,
    /// `appservice.bot.displayname`: whom a preview says the copies come from.
    pub bot_displayname: String,
}

impl Broadcasts {
    /// The broadcasts of the bot of `config`, written in `rooms`, queued for `delivery`.
    pub fn new(rooms: Arc<Rooms>, delivery: Arc<Delivery>, config: &Config) -> Self {
        Self { rooms, delivery, bot_displayname: config.appservice.bot.displayname.clone() }
    }
}
