//! The rows already shown, as a bounded window: a reconnect may replay recent rows (Vercel's
//! runtime logs have no cursor), and a row must not show twice.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};

use crate::vercel::RuntimeRow;

/// The last `capacity` rows' keys: 64-bit hashes of their `rowId` (of their content when the
/// id is empty), keyed per process so that no row can be crafted to collide.
pub struct SeenRows {
    hasher: RandomState,
    keys: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl SeenRows {
    pub fn new(capacity: usize) -> Self {
        SeenRows {
            hasher: RandomState::new(),
            keys: HashSet::with_capacity(capacity.min(4096)),
            order: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
        }
    }

    /// Remembers the row; false when it was already seen.
    pub fn insert(&mut self, row: &RuntimeRow) -> bool {
        if row.row_id.is_empty() {
            self.insert_key((
                row.timestamp_ms,
                &row.message,
                &row.request_path,
                &row.source,
            ))
        } else {
            self.insert_key(&row.row_id)
        }
    }

    /// Remembers anything by its identity; false when it was already seen.
    pub fn insert_key(&mut self, identity: impl std::hash::Hash) -> bool {
        let key = self.hasher.hash_one(identity);
        if !self.keys.insert(key) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.keys.remove(&oldest);
            }
        }
        self.order.push_back(key);
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> RuntimeRow {
        RuntimeRow {
            row_id: id.to_owned(),
            ..RuntimeRow::default()
        }
    }

    #[test]
    fn a_row_is_new_once_and_the_window_stays_bounded() {
        let mut seen = SeenRows::new(3);
        assert!(seen.insert(&row("a")));
        assert!(!seen.insert(&row("a")));
        for id in ["b", "c", "d"] {
            assert!(seen.insert(&row(id)));
        }
        assert_eq!(seen.len(), 3);
        // `a` fell out of the window: it would show again, as the window's size documents.
        assert!(seen.insert(&row("a")));
        assert!(!seen.insert(&row("d")));
    }

    #[test]
    fn rows_without_an_id_are_told_apart_by_their_content() {
        let mut seen = SeenRows::new(10);
        let mut one = row("");
        one.message = "boot".to_owned();
        assert!(seen.insert(&one));
        assert!(!seen.insert(&one));
        one.timestamp_ms += 1;
        assert!(seen.insert(&one));
    }
}
