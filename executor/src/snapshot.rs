//! State snapshots for checkpoints and state transfer, and their validating restore.
//!
//! Format (all integers big-endian):
//!
//! ```text
//! magic   "TNDMSNP1"                     8 bytes
//! digest  the state digest (Merkle root) 32 bytes
//! count   number of entries              8 bytes
//! entries count × (key ‖ value)          canonical encoding (encoding.rs), keys strictly ascending
//! ```
//!
//! The snapshot of a state is unique (sorted, no defaults), so equal states give
//! byte-identical snapshots. `State::restore` never trusts its input: it bounds the
//! entry count by the input length, checks every tag, length, key/value kind and
//! value invariant, requires strictly ascending keys and no trailing bytes, and
//! recomputes the digest, which must equal the one recorded. This single-frame form
//! stays for tools and for the consensus path until it switches to the chunked
//! transfer of `chunks.rs`.

use crate::encoding::{
    Buf, MAX_KEY_LEN, MAX_VALUE_LEN, MIN_ENTRY_LEN, Reader, encode_key, encode_value,
};
use crate::error::Error;
use crate::state::{State, check_entry};

const MAGIC: [u8; 8] = *b"TNDMSNP1";

impl State {
    /// Serialises the whole state (see the module docs for the format); an
    /// unsettled state is serialised from a settled copy (`State::settled`).
    pub fn snapshot(&self) -> Vec<u8> {
        self.settled().encode_settled()
    }

    /// `snapshot` of a settled state.
    fn encode_settled(&self) -> Vec<u8> {
        let digest = self.tree().root();
        let entries = self.entries();
        let mut out = Vec::with_capacity(48 + entries.len() * 40);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&digest);
        out.extend_from_slice(&(entries.len() as u64).to_be_bytes());
        for (key, value) in &entries {
            let mut buf = Buf::<{ MAX_KEY_LEN + MAX_VALUE_LEN }>::new();
            encode_key(key, &mut buf);
            encode_value(value, &mut buf);
            out.extend_from_slice(buf.as_slice());
        }
        out
    }

    /// Rebuilds a state from `snapshot`, validating everything; the result has the
    /// digest recorded in the snapshot (else this is an error).
    pub fn restore(snapshot: &[u8]) -> Result<State, Error> {
        let fail = |offset: usize, reason: &'static str| Error::Snapshot { offset, reason };
        let mut r = Reader::new(snapshot);
        let magic: [u8; 8] = r.take().map_err(|e| fail(e.offset, e.reason))?;
        if magic != MAGIC {
            return Err(fail(0, "not a tandem state snapshot (bad magic)"));
        }
        let recorded: [u8; 32] = r.take().map_err(|e| fail(e.offset, e.reason))?;
        let count = r.u64().map_err(|e| fail(e.offset, e.reason))?;
        let count_offset = r.position() - 8;
        let max_entries = (r.remaining() / MIN_ENTRY_LEN) as u64;
        if count > max_entries {
            return Err(fail(
                count_offset,
                "entry count larger than the input can hold",
            ));
        }
        let mut entries = Vec::with_capacity(count as usize);
        let mut previous = None;
        for _ in 0..count {
            let at = r.position();
            let key = r.key().map_err(|e| fail(e.offset, e.reason))?;
            let value = r.value().map_err(|e| fail(e.offset, e.reason))?;
            if previous.is_some_and(|p| p >= key) {
                return Err(fail(at, "keys not strictly ascending"));
            }
            check_entry(&key, &value).map_err(|reason| fail(at, reason))?;
            if value.is_default() {
                return Err(fail(at, "default value stored (not canonical)"));
            }
            previous = Some(key);
            entries.push((key, value));
        }
        if r.remaining() != 0 {
            return Err(fail(r.position(), "trailing bytes after the last entry"));
        }
        let mut state = State::new();
        state.insert_verified(&entries);
        if state.digest() != recorded {
            return Err(fail(8, "digest does not match the entries"));
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amm::Pool;
    use crate::lending::{Market, Position};
    use crate::state::{Key, Value};

    fn sample() -> State {
        State::from_entries([
            (Key::Nonce(1), Value::Nonce(3)),
            (
                Key::PublicKey(1),
                Value::PublicKey(crate::signature::account_public_key(1, 1).unwrap()),
            ),
            (Key::Balance(1, 0), Value::Amount(1000)),
            (Key::Balance(2, 1), Value::Amount(5)),
            (
                Key::Pool(0),
                Value::Pool(Pool {
                    token0: 0,
                    token1: 1,
                    reserve0: 10_000,
                    reserve1: 20_000,
                    lp_supply: 14_142,
                }),
            ),
            (Key::Lp(0, 1), Value::Amount(13_142)),
            (Key::Market(0), Value::Market(Market::new(0, 7500))),
            (
                Key::Position(0, 2),
                Value::Position(Position {
                    deposit: 1,
                    borrow: 0,
                }),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn round_trip_keeps_digest_and_contents() {
        let mut s = sample();
        let snap = s.snapshot();
        let mut back = State::restore(&snap).unwrap();
        assert_eq!(back.digest(), s.digest());
        assert_eq!(back, s);
        assert_eq!(back.snapshot(), snap);
        assert!(back.has_public_keys());
    }

    #[test]
    fn garbage_is_rejected_without_panicking() {
        let snap = sample().snapshot();
        for len in 0..snap.len() {
            assert!(State::restore(&snap[..len]).is_err(), "prefix {len}");
        }
        let mut longer = snap.clone();
        longer.push(0);
        assert!(State::restore(&longer).is_err());
        for i in 0..snap.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = snap.clone();
                bad[i] ^= bit;
                assert!(State::restore(&bad).is_err(), "flip byte {i} bit {bit:#x}");
            }
        }
        let mut huge = snap[..40].to_vec();
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(
            State::restore(&huge),
            Err(Error::Snapshot { offset: 40, .. })
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Arbitrary bytes, and valid snapshots with arbitrary edits, never panic;
        /// whatever is accepted has the recorded digest.
        #[test]
        fn restore_never_panics(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            edits in proptest::collection::vec((0usize..400, proptest::prelude::any::<u8>()), 0..4),
        ) {
            let _ = State::restore(&noise);
            let mut snap = sample().snapshot();
            for (at, byte) in edits {
                let i = at % snap.len();
                snap[i] = byte;
            }
            if let Ok(mut state) = State::restore(&snap) {
                let digest = state.digest();
                proptest::prop_assert_eq!(digest.as_slice(), &snap[8..40]);
            }
        }
    }

    #[test]
    fn empty_state_round_trips() {
        let s = State::new();
        assert_eq!(State::restore(&s.snapshot()).unwrap(), s);
    }
}
