//! Access tokens this process has checked, remembered until they expire.
//!
//! Checking a token in full (base64, the key derivation, the decryption, the claims)
//! was 60k instructions, a third of `issue(id)`'s (`bench/callgrind/run issue`),
//! and a client sends the same token with every request until it expires. A token
//! already checked is found here instead, for a few thousand.
//!
//! Only a token that passed the full check is kept, with what it proved; it is
//! answered from here only while it has not expired, and only if it is the very same
//! string, compared in constant time. A token carries no state the database could
//! revoke (see [`super::token`]), so a remembered one says exactly what checking it
//! again would.
//!
//! Bounded: a fixed table of [`SLOTS`] slots, each token in the slot a hash of it
//! (keyed per process, so a client cannot aim at another's slot) picks, replacing
//! whatever was there. Nothing grows, nothing is swept, and a slot's lock is held
//! for a comparison.

use std::{
    hash::{BuildHasher, RandomState},
    sync::Mutex,
};

use chrono::{DateTime, Utc};

use super::VerifiedToken;
use crate::sync::lock;

/// How many tokens are remembered at most: every client of a busy server, at a few
/// hundred bytes each (under 2 MiB full, 64 KiB empty).
pub const SLOTS: usize = 4_096;

pub struct RememberedTokens {
    /// Boxed, so that an empty slot is a pointer and its lock (16 bytes).
    slots: Box<[Mutex<Option<Box<Remembered>>>]>,
    hasher: RandomState,
}

struct Remembered {
    token: Box<str>,
    verified: VerifiedToken,
}

impl RememberedTokens {
    pub fn new() -> Self {
        Self { slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(), hasher: RandomState::new() }
    }

    /// What `token` proved when it was checked, if it is remembered and has not
    /// expired by `now`.
    pub fn get(&self, token: &str, now: DateTime<Utc>) -> Option<VerifiedToken> {
        let slot = lock(self.slot(token));
        let remembered = slot.as_ref()?;
        let same = same_in_constant_time(remembered.token.as_bytes(), token.as_bytes());
        (same && now < remembered.verified.expires_at).then_some(remembered.verified)
    }

    /// Remembers a token that passed the full check, in place of its slot's last.
    pub fn insert(&self, token: &str, verified: VerifiedToken) {
        let remembered = Box::new(Remembered { token: token.into(), verified });
        // The old one is dropped after the lock is let go.
        let _old = lock(self.slot(token)).replace(remembered);
    }

    fn slot(&self, token: &str) -> &Mutex<Option<Box<Remembered>>> {
        &self.slots[self.hasher.hash_one(token) as usize % SLOTS]
    }
}

/// Whether `a` and `b` are the same bytes, in a time that depends on their length
/// alone: every word is compared, and the compiler cannot see the difference so far
/// (`black_box`) to stop early. (Eight bytes a step: `subtle`'s byte at a time was
/// most of a lookup.)
fn same_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |bytes: &[u8]| {
        let mut word = [0u8; 8];
        word[..bytes.len()].copy_from_slice(bytes);
        u64::from_ne_bytes(word)
    };
    let mut difference = 0u64;
    for (a, b) in a.chunks(8).zip(b.chunks(8)) {
        difference = std::hint::black_box(difference | (word(a) ^ word(b)));
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::ids::UserId;

    fn verified(user: i64, expires_at: DateTime<Utc>) -> VerifiedToken {
        VerifiedToken { user_id: UserId(user), expires_at }
    }

    #[test]
    fn a_remembered_token_is_found_until_it_expires() {
        let remembered = RememberedTokens::new();
        let now = Utc::now();
        let expires_at = now + chrono::Duration::minutes(15);
        assert_eq!(remembered.get("v4.local.one", now), None);
        remembered.insert("v4.local.one", verified(7, expires_at));
        assert_eq!(remembered.get("v4.local.one", now), Some(verified(7, expires_at)));
        assert!(remembered.get("v4.local.one", expires_at - chrono::Duration::seconds(1)).is_some());
        assert_eq!(remembered.get("v4.local.one", expires_at), None, "expired at its exp");
    }

    #[test]
    fn only_the_very_same_string_is_found() {
        let remembered = RememberedTokens::new();
        let now = Utc::now();
        remembered.insert("v4.local.one", verified(7, now + chrono::Duration::minutes(15)));
        for other in ["v4.local.onE", "v4.local.on", "v4.local.one ", "", "v4.local.two"] {
            assert_eq!(remembered.get(other, now), None, "{other:?}");
        }
    }

    #[test]
    fn the_comparison_sees_every_byte() {
        let token = b"v4.local.0123456789abcdefghijklmnopqrstuvwxyz";
        assert!(same_in_constant_time(token, token));
        for n in 0..token.len() {
            let mut other = *token;
            other[n] ^= 1;
            assert!(!same_in_constant_time(token, &other), "byte {n}");
        }
        assert!(!same_in_constant_time(token, &token[..token.len() - 1]));
        assert!(same_in_constant_time(b"", b""));
    }

    #[test]
    fn a_slot_holds_one_token_and_the_table_never_grows() {
        let remembered = RememberedTokens::new();
        let now = Utc::now();
        let later = now + chrono::Duration::minutes(15);
        let tokens: Vec<String> = (0..SLOTS * 2).map(|n| format!("v4.local.{n}")).collect();
        for (n, token) in tokens.iter().enumerate() {
            remembered.insert(token, verified(n as i64, later));
        }
        assert_eq!(remembered.slots.len(), SLOTS);
        let found = tokens.iter().filter(|token| remembered.get(token, now).is_some()).count();
        assert!(found <= SLOTS, "{found} remembered in {SLOTS} slots");
        // The last one in is always there, and answers for its own user.
        let last = SLOTS * 2 - 1;
        assert_eq!(remembered.get(&tokens[last], now), Some(verified(last as i64, later)));
    }
}
