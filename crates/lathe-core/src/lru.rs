//! Intrusive doubly-linked list over block ids: O(1) push-back, pop-front and removal of any
//! member. The pool keeps its cached-but-free blocks here in the order they were freed, so the
//! front is the least recently used block and the first to be evicted.

use crate::BlockId;

const NIL: BlockId = BlockId::MAX;

#[derive(Clone, Debug)]
pub(crate) struct LruList {
    prev: Vec<BlockId>,
    next: Vec<BlockId>,
    linked: Vec<bool>,
    head: BlockId,
    tail: BlockId,
    len: usize,
}

impl LruList {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            prev: vec![NIL; capacity],
            next: vec![NIL; capacity],
            linked: vec![false; capacity],
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn contains(&self, id: BlockId) -> bool {
        self.linked.get(id as usize).copied().unwrap_or(false)
    }

    /// Append `id` as the most recently used member. No-op if already linked.
    pub(crate) fn push_back(&mut self, id: BlockId) {
        if self.contains(id) {
            return;
        }
        let i = id as usize;
        self.prev[i] = self.tail;
        self.next[i] = NIL;
        if self.tail == NIL {
            self.head = id;
        } else {
            self.next[self.tail as usize] = id;
        }
        self.tail = id;
        self.linked[i] = true;
        self.len += 1;
    }

    /// Unlink `id`; returns false if it was not a member.
    pub(crate) fn remove(&mut self, id: BlockId) -> bool {
        if !self.contains(id) {
            return false;
        }
        let i = id as usize;
        let (p, n) = (self.prev[i], self.next[i]);
        if p == NIL {
            self.head = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.prev[n as usize] = p;
        }
        self.prev[i] = NIL;
        self.next[i] = NIL;
        self.linked[i] = false;
        self.len -= 1;
        true
    }

    /// Remove and return the least recently used member.
    pub(crate) fn pop_front(&mut self) -> Option<BlockId> {
        let id = self.head;
        (id != NIL).then(|| {
            self.remove(id);
            id
        })
    }

    /// Members from least to most recently used (O(n); for tests and diagnostics).
    pub(crate) fn iter(&self) -> impl Iterator<Item = BlockId> + '_ {
        std::iter::successors((self.head != NIL).then_some(self.head), |&id| {
            let n = self.next[id as usize];
            (n != NIL).then_some(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_unlinks_from_anywhere() {
        let mut l = LruList::new(5);
        for id in [3, 1, 4, 0] {
            l.push_back(id);
        }
        l.push_back(1); // already linked: position unchanged
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![3, 1, 4, 0]);
        assert!(l.remove(4));
        assert!(!l.remove(4));
        assert!(l.remove(3)); // head
        assert!(l.remove(0)); // tail
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![1]);
        l.push_back(2);
        assert_eq!(l.len(), 2);
        assert_eq!(l.pop_front(), Some(1));
        assert_eq!(l.pop_front(), Some(2));
        assert_eq!(l.pop_front(), None);
        assert_eq!(l.len(), 0);
        assert!(!l.contains(2) && !l.contains(99));
    }
}
