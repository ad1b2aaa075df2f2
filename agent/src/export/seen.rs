//! A bounded set of recently seen pod uids (oldest forgotten first): which
//! pods already had their startup exported or recorded, so the final
//! audit of a pod whose startup audit came earlier does not count or send
//! it twice.

use std::collections::{HashSet, VecDeque};

/// How many pods the set remembers by default.
pub const DEFAULT_PODS_REMEMBERED: usize = 16_384;

#[derive(Debug)]
pub struct SeenSet {
    order: VecDeque<String>,
    members: HashSet<String>,
    capacity: usize,
}

impl SeenSet {
    pub fn new(capacity: usize) -> Self {
        Self {
            order: VecDeque::new(),
            members: HashSet::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.members.contains(uid)
    }

    /// Remembers `uid`; true when it was not remembered yet.
    pub fn insert(&mut self, uid: &str) -> bool {
        if self.members.contains(uid) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.members.remove(&old);
        }
        self.order.push_back(uid.to_owned());
        self.members.insert(uid.to_owned());
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
    use super::SeenSet;

    #[test]
    fn remembers_up_to_its_capacity() {
        let mut s = SeenSet::new(2);
        assert!(s.insert("a"));
        assert!(!s.insert("a"));
        assert!(s.insert("b"));
        assert!(s.insert("c"));
        assert_eq!(s.len(), 2);
        assert!(!s.contains("a"), "oldest forgotten");
        assert!(s.contains("b") && s.contains("c"));
    }
}
