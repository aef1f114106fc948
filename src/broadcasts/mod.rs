//! The broadcasts layer: a broadcast's life from its draft to its end. Create, resolve, preview,
//! schedule or start, progress and finish (`lifecycle`); who is addressed and who is left out
//! (`audience`); welcomes for people who join later (`defaults`); edits, retractions and poll
//! ends of delivered copies (`followup`). It hands copies to the delivery layer's queue.

pub mod audience;
pub mod defaults;
pub mod followup;
pub mod lifecycle;
