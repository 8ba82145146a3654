//! When the guimux loop looks again for traffic before it sleeps. In flows, after every burst
//! the loop handled, whether the last look found more; out flows how long the next look may
//! last. Right after traffic a short look (busy polling, [`SPIN`]) catches the answer to a
//! round trip without a sleep and a wake-up, which on an idle core is most of what a relayed
//! round trip costs. On a busy machine the look costs the app and the X server the CPU they
//! need: the answer cannot come while we hold the core, every look ends empty-handed, and the
//! time is lost twice. So after [`MISSES_BEFORE_REST`] empty looks in a row the loop rests
//! from looking for [`REST`] and sleeps in poll straight away; one look that finds traffic
//! makes it look every time again.

use std::time::{Duration, Instant};

/// How long a look lasts.
pub const SPIN: Duration = Duration::from_micros(60);
/// Empty looks in a row after which the loop rests from looking.
pub const MISSES_BEFORE_REST: u32 = 3;
/// How long a rest lasts: long against a round trip, short against a change of load.
pub const REST: Duration = Duration::from_millis(20);

/// The looking policy of one loop.
#[derive(Debug, Default)]
pub struct Spin {
    misses: u32,
    rest_until: Option<Instant>,
}

impl Spin {
    /// Until when to look, given when the loop last handled traffic; `None`: sleep at once.
    pub fn deadline(&self, last_activity: Instant, now: Instant) -> Option<Instant> {
        if self.rest_until.is_some_and(|r| now < r) {
            return None;
        }
        let until = last_activity + SPIN;
        (now < until).then_some(until)
    }

    /// What a look that was made found.
    pub fn looked(&mut self, found: bool, now: Instant) {
        if found {
            self.misses = 0;
            self.rest_until = None;
            return;
        }
        self.misses += 1;
        if self.misses >= MISSES_BEFORE_REST {
            self.misses = 0;
            self.rest_until = Some(now + REST);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_right_after_traffic_only() {
        let s = Spin::default();
        let t = Instant::now();
        assert_eq!(s.deadline(t, t), Some(t + SPIN));
        assert_eq!(s.deadline(t, t + SPIN), None, "the look is over");
    }

    #[test]
    fn empty_looks_in_a_row_rest_and_a_find_resumes() {
        let mut s = Spin::default();
        let t = Instant::now();
        for _ in 0..MISSES_BEFORE_REST - 1 {
            s.looked(false, t);
            assert!(s.deadline(t, t).is_some(), "rested too early");
        }
        s.looked(false, t);
        assert_eq!(
            s.deadline(t, t),
            None,
            "still looking after {MISSES_BEFORE_REST} misses"
        );
        let later = t + REST;
        assert_eq!(
            s.deadline(later, later),
            Some(later + SPIN),
            "rest never ends"
        );
        // A find in between resets the count.
        let mut s = Spin::default();
        s.looked(false, t);
        s.looked(false, t);
        s.looked(true, t);
        s.looked(false, t);
        assert!(s.deadline(t, t).is_some());
    }
}
