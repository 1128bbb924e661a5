//! Prefix-cache keys: a hash chained over (parent block hash, the block's token ids).
//!
//! Chaining makes a block's key depend on the whole prefix before it, so equal keys mean equal
//! prefixes, not just equal blocks. The key is 128 bits (two SipHash-1-3 passes with different
//! domain tags) so that a collision — which would silently serve wrong KV — is negligible
//! without storing and comparing token ids. Keys live only in memory, never on disk, so the
//! std hasher's lack of cross-version stability does not matter.

use std::hash::{DefaultHasher, Hash, Hasher};

/// Prefix-cache key of one full block (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockHash(pub u128);

impl BlockHash {
    /// Key of a block holding `tokens` whose predecessor block has key `parent`
    /// (`None` for the first block of a sequence).
    pub fn new(parent: Option<BlockHash>, tokens: &[u32]) -> Self {
        let half = |domain: u8| {
            let mut h = DefaultHasher::new();
            domain.hash(&mut h);
            parent.hash(&mut h);
            tokens.hash(&mut h);
            h.finish() as u128
        };
        BlockHash((half(0) << 64) | half(1))
    }
}

/// Extend `hashes` with the keys of every newly *full* block of `tokens`.
/// `hashes` must hold the keys of the first `hashes.len()` blocks of `tokens`.
pub(crate) fn extend_block_hashes(tokens: &[u32], block_size: usize, hashes: &mut Vec<BlockHash>) {
    let full = tokens.len() / block_size;
    for i in hashes.len()..full {
        let parent = hashes.last().copied();
        hashes.push(BlockHash::new(
            parent,
            &tokens[i * block_size..(i + 1) * block_size],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chained_hash_depends_on_the_whole_prefix() {
        let a = BlockHash::new(None, &[1, 2]);
        let b = BlockHash::new(None, &[9, 9]);
        // Same block content after different parents gives different keys.
        assert_ne!(
            BlockHash::new(Some(a), &[3, 4]),
            BlockHash::new(Some(b), &[3, 4])
        );
        assert_ne!(
            BlockHash::new(None, &[3, 4]),
            BlockHash::new(Some(a), &[3, 4])
        );
        assert_eq!(
            BlockHash::new(Some(a), &[3, 4]),
            BlockHash::new(Some(a), &[3, 4])
        );
    }

    #[test]
    fn extend_only_hashes_full_blocks_incrementally() {
        let mut hashes = Vec::new();
        extend_block_hashes(&[1, 2, 3, 4, 5], 2, &mut hashes);
        assert_eq!(hashes.len(), 2);
        let first = hashes.clone();
        extend_block_hashes(&[1, 2, 3, 4, 5, 6], 2, &mut hashes);
        assert_eq!(hashes.len(), 3);
        assert_eq!(&hashes[..2], &first[..]);
        let mut fresh = Vec::new();
        extend_block_hashes(&[1, 2, 3, 4, 5, 6], 2, &mut fresh);
        assert_eq!(hashes, fresh);
    }
}
