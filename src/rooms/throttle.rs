//! Per-person rate limits on what the bot passes on: a person who writes a flood into their DM
//! gets a few messages relayed into the control room each minute, then one notice, then nothing
//! until the minute is over. A leaf: it knows nothing of rooms or the homeserver.

use std::{collections::HashMap, sync::Mutex};

use ruma::{OwnedUserId, UserId};

/// What to do with one more message from a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: pass it on.
    Pass,
    /// The first message over the limit in this window: hold it, and say so once.
    FirstHeld,
    /// Over the limit, already said: hold it quietly.
    Held,
}

/// Up to `allowed` messages per person in each window of `window_ms`.
pub struct Throttle {
    allowed: u32,
    window_ms: i64,
    /// Per person: when their window started, and how many messages it has seen.
    windows: Mutex<HashMap<OwnedUserId, (i64, u32)>>,
}

impl Throttle {
    pub fn new(allowed: u32, window_ms: i64) -> Self {
        Self { allowed, window_ms, windows: Mutex::new(HashMap::new()) }
    }

    /// How many messages a window lets through.
    pub fn allowed(&self) -> u32 {
        self.allowed
    }

    /// Counts one message from `user` at `now_ms` and says what to do with it.
    pub fn check(&self, user: &UserId, now_ms: i64) -> Verdict {
        let mut windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| now_ms - *start < self.window_ms);
        }
        let (start, count) = windows.entry(user.to_owned()).or_insert((now_ms, 0));
        if now_ms - *start >= self.window_ms {
            (*start, *count) = (now_ms, 0);
        }
        *count += 1;
        match *count {
            count if count <= self.allowed => Verdict::Pass,
            count if count == self.allowed + 1 => Verdict::FirstHeld,
            _ => Verdict::Held,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_passes_a_few_then_folds_into_one_notice_per_window() {
        let throttle = Throttle::new(3, 60_000);
        let alice = ruma::user_id!("@alice:x.org");
        let verdicts: Vec<Verdict> = (0..6).map(|n| throttle.check(alice, 1_000 + n)).collect();
        use Verdict::*;
        assert_eq!(verdicts, [Pass, Pass, Pass, FirstHeld, Held, Held]);
        assert_eq!(throttle.check(ruma::user_id!("@bob:x.org"), 1_010), Pass, "per person");
        assert_eq!(throttle.check(alice, 61_000), Pass, "a new window");
    }
}
