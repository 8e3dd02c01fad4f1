//! The wake-up arithmetic: which slot windows a `gpslog` point falls in, marked per user, then
//! counted per slot. Memory is a few hundred bits per user of the page being read and one
//! counter per slot, whatever the number of points.
//!
//! Times are microseconds since 1970-01-01 of the naive local wall clock (the backend's form).

/// Half-hours in a day.
pub(crate) const SLOTS_PER_DAY: usize = 48;
/// Days in a week.
pub(crate) const DAYS: usize = 7;
/// Half-hour slots in a week.
pub(crate) const SLOTS: usize = SLOTS_PER_DAY * DAYS;
/// Microseconds in a day.
pub(crate) const DAY_MICROS: i64 = 86_400_000_000;
/// How many never-woke user ids a report lists at most.
pub(crate) const NEVER_WOKE_IDS: usize = 1_000;

const WORDS: usize = SLOTS.div_ceil(64);

/// A set of slots, one bit each.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotSet([u64; WORDS]);

impl SlotSet {
    fn insert(&mut self, slot: usize) {
        self.0[slot / 64] |= 1 << (slot % 64);
    }

    /// The slots in the set, ascending.
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(word, bits)| {
            (0..64).filter(move |bit| bits & (1 << bit) != 0).map(move |bit| word * 64 + bit)
        })
    }
}

/// What one user's points showed: the week's days with a point, the slots whose wake window
/// held a point, and the slots whose window before the push held one.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Marks {
    days: u8,
    woke: SlotSet,
    before: SlotSet,
}

/// The sent slots' windows: `[start, start + width)` after each push, `[start − width, start)`
/// before it.
#[derive(Debug, Clone)]
pub(crate) struct Windows {
    /// (send start, slot index), sorted by start.
    starts: Vec<(i64, usize)>,
    width: i64,
    week_start: i64,
}

impl Windows {
    /// Windows of `width` microseconds around each sent slot's start; `week_start` is Monday
    /// 00:00 of the week.
    pub(crate) fn new(mut starts: Vec<(i64, usize)>, width: i64, week_start: i64) -> Self {
        starts.sort_unstable();
        Windows { starts, width, week_start }
    }

    /// Marks the point at `at` in `marks`: its day, and every window that contains it (windows
    /// of neighbouring slots may overlap when a push started late).
    pub(crate) fn mark(&self, marks: &mut Marks, at: i64) {
        let day = (at - self.week_start).div_euclid(DAY_MICROS);
        if (0..DAYS as i64).contains(&day) {
            marks.days |= 1 << day;
        }
        // After a push: start <= at < start + width, i.e. at − width < start <= at.
        for &(_, slot) in self.between(at - self.width, at) {
            marks.woke.insert(slot);
        }
        // Before it: start − width <= at < start, i.e. at < start <= at + width.
        for &(_, slot) in self.between(at, at + self.width) {
            marks.before.insert(slot);
        }
    }

    /// The windows whose start is in `(low, high]`.
    fn between(&self, low: i64, high: i64) -> &[(i64, usize)] {
        let from = self.starts.partition_point(|&(start, _)| start <= low);
        let to = self.starts.partition_point(|&(start, _)| start <= high);
        &self.starts[from..to.max(from)]
    }
}

/// The week's counts, one user at a time.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    /// Users with a point on each day.
    pub active_per_day: [u64; DAYS],
    /// Users with a point on any day of the week.
    pub active_users: u64,
    /// Per slot: active users of its day with a point in the window after the push.
    pub woke: Vec<u64>,
    /// Per slot: active users of its day with a point in the window before the push.
    pub before: Vec<u64>,
    /// Active users who woke in no slot.
    pub never_woke: u64,
    /// The lowest [`NEVER_WOKE_IDS`] of them, ascending when users are added in id order.
    pub never_woke_ids: Vec<i64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            active_per_day: [0; DAYS],
            active_users: 0,
            woke: vec![0; SLOTS],
            before: vec![0; SLOTS],
            never_woke: 0,
            never_woke_ids: Vec::new(),
        }
    }
}

impl Tally {
    /// Counts one user. A window counts only for a user active on its slot's day: the slot's
    /// share is of that day's active users.
    pub(crate) fn add(&mut self, user: i64, marks: &Marks) {
        if marks.days == 0 {
            return;
        }
        self.active_users += 1;
        for (day, count) in self.active_per_day.iter_mut().enumerate() {
            if marks.days & (1 << day) != 0 {
                *count += 1;
            }
        }
        let active = |slot: usize| marks.days & (1 << (slot / SLOTS_PER_DAY)) != 0;
        let mut woke_once = false;
        for slot in marks.woke.iter().filter(|&slot| active(slot)) {
            self.woke[slot] += 1;
            woke_once = true;
        }
        for slot in marks.before.iter().filter(|&slot| active(slot)) {
            self.before[slot] += 1;
        }
        if !woke_once {
            self.never_woke += 1;
            if self.never_woke_ids.len() < NEVER_WOKE_IDS {
                self.never_woke_ids.push(user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    fn windows() -> Windows {
        // Slot 48 (Tuesday 00:00) sent at 00:00, slot 49 at 00:31 (late), width 10 minutes.
        Windows::new(vec![(DAY_MICROS + 31 * MIN, 49), (DAY_MICROS, 48)], 10 * MIN, 0)
    }

    fn marked(points: &[i64]) -> Marks {
        let windows = windows();
        let mut marks = Marks::default();
        for &at in points {
            windows.mark(&mut marks, at);
        }
        marks
    }

    #[test]
    fn a_point_after_the_start_wakes_and_one_before_is_the_baseline() {
        let marks = marked(&[DAY_MICROS + 2 * MIN, DAY_MICROS + 25 * MIN]);
        assert_eq!(marks.woke.iter().collect::<Vec<_>>(), [48]);
        assert_eq!(marks.before.iter().collect::<Vec<_>>(), [49]);
        assert_eq!(marks.days, 0b10);
    }

    #[test]
    fn windows_are_half_open() {
        let marks = marked(&[DAY_MICROS + 10 * MIN]);
        assert!(marks.woke.iter().next().is_none());
        let marks = marked(&[DAY_MICROS - 10 * MIN]);
        assert_eq!(marks.before.iter().collect::<Vec<_>>(), [48]);
    }

    #[test]
    fn a_window_counts_only_for_users_active_on_the_slots_day() {
        let mut tally = Tally::default();
        // A point on Monday 23:55 is in Tuesday 00:00's window before, but the user has no
        // point on Tuesday: not counted there, and never woke.
        tally.add(7, &marked(&[DAY_MICROS - 5 * MIN]));
        assert_eq!(tally.before[48], 0);
        assert_eq!(
            (tally.active_per_day[0], tally.never_woke, tally.never_woke_ids.clone()),
            (1, 1, vec![7])
        );
    }

    #[test]
    fn users_without_a_point_in_the_week_are_not_counted() {
        let mut tally = Tally::default();
        tally.add(1, &marked(&[-DAY_MICROS]));
        assert_eq!((tally.active_users, tally.never_woke), (0, 0));
    }
}
