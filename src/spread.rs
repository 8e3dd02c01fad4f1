//! `path-daily --spread`: a slot's messages sent evenly over a delivery window. Every phone that
//! gets `path-daily` uploads its week to the backend's single Django host; sent as fast as
//! `--rate` allows, a million uploads would arrive within two minutes. Spread over a window, the
//! host sees about N/window uploads per second.
//!
//! The pace is fixed when a run starts, from what it knows up front: how many messages it
//! expects to send (the count the progress bar's total comes from) and, for a journaled slot,
//! how far into the window the slot already is (its first run's start, in the server's clock).

use std::time::Duration;

/// Where a slot stands against its window when a run starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SlotClock {
    /// Time since the slot's first run started; zero for a run without a journal.
    pub elapsed: Duration,
    /// Messages earlier runs of the slot finished (sent, pruned, or failed for good).
    pub finished: u64,
}

/// A window to spread a run's messages over, and where the slot stands in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spread {
    /// The whole slot's delivery window, counted from its first run's start.
    pub window: Duration,
    /// Where the slot stands.
    pub clock: SlotClock,
}

impl Spread {
    /// Messages per second that send `remaining` messages by the end of the window: what is
    /// left over what is left of the window (a resumed slot catches up, so the slot still ends
    /// when it was meant to), but never slower than the whole slot over the whole window (a
    /// rerun after the window closed sends the rest at the slot's own pace, not in a burst and
    /// not forever). `None` when nothing is left to send.
    pub(crate) fn pace(&self, remaining: u64) -> Option<f64> {
        if remaining == 0 || self.window.is_zero() {
            return None;
        }
        let whole = (self.clock.finished + remaining) as f64 / self.window.as_secs_f64();
        let left = self.window.saturating_sub(self.clock.elapsed).as_secs_f64();
        let catch_up = if left > 0.0 { remaining as f64 / left } else { 0.0 };
        Some(whole.max(catch_up))
    }
}

/// The rate a run sends at: the spread's pace, never above the `--rate` cap (`None`: no cap).
pub(crate) fn capped(pace: Option<f64>, rate_cap: Option<u32>) -> Option<f64> {
    match (pace, rate_cap) {
        (Some(pace), Some(cap)) => Some(pace.min(f64::from(cap))),
        (Some(pace), None) => Some(pace),
        (None, cap) => cap.map(f64::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(window_secs: u64, elapsed_secs: u64, finished: u64) -> Spread {
        let clock = SlotClock { elapsed: Duration::from_secs(elapsed_secs), finished };
        Spread { window: Duration::from_secs(window_secs), clock }
    }

    #[test]
    fn a_fresh_slot_sends_its_targets_over_the_whole_window() {
        assert_eq!(spread(30, 0, 0).pace(3000), Some(100.0));
    }

    #[test]
    fn a_resumed_slot_sends_what_is_left_over_what_is_left_of_the_window() {
        assert_eq!(spread(30, 20, 1500).pace(1500), Some(150.0));
    }

    #[test]
    fn after_the_window_the_rest_goes_at_the_slots_own_pace() {
        assert_eq!(spread(30, 45, 1500).pace(1500), Some(100.0));
    }

    #[test]
    fn nothing_left_sets_no_pace() {
        assert_eq!(spread(30, 0, 0).pace(0), None);
    }

    #[test]
    fn the_rate_cap_bounds_the_pace() {
        assert_eq!(capped(Some(20_000.0), Some(9000)), Some(9000.0));
        assert_eq!(capped(Some(100.0), Some(9000)), Some(100.0));
        assert_eq!(capped(None, Some(9000)), Some(9000.0));
        assert_eq!(capped(None, None), None);
    }
}
