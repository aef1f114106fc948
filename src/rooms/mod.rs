//! The rooms layer: the rooms the bot writes in and reads from. One private DM per recipient and
//! sender (`dm`), talking back in a room (`notices`), replies from DMs into control-room threads
//! and answers back (`relay`), which rooms are control rooms (`control_rooms`), and what an
//! event's handler tells the dispatcher (`handled`).

pub mod control_rooms;
pub mod dm;
pub mod handled;
pub mod notices;
pub mod relay;
pub mod throttle;
