//! A timer heap: each reactor keeps one and sleeps until its nearest deadline.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Timers ordered by deadline; ties fire in the order they were added.
pub struct TimerHeap<T> {
    heap: BinaryHeap<Reverse<(Instant, u64, TimerEntry<T>)>>,
    seq: u64,
}

/// Wrapper so the payload never takes part in ordering.
struct TimerEntry<T>(T);
impl<T> PartialEq for TimerEntry<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for TimerEntry<T> {}
impl<T> PartialOrd for TimerEntry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for TimerEntry<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<T> Default for TimerHeap<T> {
    fn default() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<T> TimerHeap<T> {
    pub fn add(&mut self, deadline: Instant, what: T) {
        self.seq += 1;
        self.heap
            .push(Reverse((deadline, self.seq, TimerEntry(what))));
    }

    /// The nearest deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Removes and returns one timer due at `now`, earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.next_deadline()? <= now {
            self.heap.pop().map(|Reverse((_, _, TimerEntry(t)))| t)
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_then_insertion_order() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        h.add(t0 + Duration::from_millis(30), "c");
        h.add(t0 + Duration::from_millis(10), "a");
        h.add(t0 + Duration::from_millis(10), "b");
        assert_eq!(h.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(h.pop_due(t0), None);
        let now = t0 + Duration::from_millis(20);
        assert_eq!(h.pop_due(now), Some("a"));
        assert_eq!(h.pop_due(now), Some("b"));
        assert_eq!(h.pop_due(now), None);
        assert_eq!(h.len(), 1);
        assert_eq!(h.pop_due(t0 + Duration::from_millis(30)), Some("c"));
        assert!(h.is_empty());
    }
}
