//! Serde for fixed-size byte arrays (digests, signatures, MACs) as one byte string.
//!
//! Serde's derive writes `[u8; N]` as a tuple of N separate `u8`s, and bincode decodes
//! such a tuple one element at a time through a visitor: a pre-prepare of 1,024
//! authenticated requests took ~70,000 element visits, and decoding was 6% of a
//! replica's CPU and a fifth of the load clients' (perf profile of `tandem local`,
//! d50ccc4). As a byte string an array is one length prefix and one copy. In bincode
//! that costs one more byte per array on the wire; a length other than N is refused.
//!
//! Readers also take a sequence of N integers, so text formats (JSON) that wrote the
//! old tuple form still read.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// `#[serde(with = "crate::byte_arrays")]` on a `[u8; N]` field.
pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}

/// `#[serde(with = "crate::byte_arrays")]` on a `[u8; N]` field: exactly N bytes.
pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
    d.deserialize_bytes(ArrayVisitor::<N>)
}

struct ArrayVisitor<const N: usize>;

impl<'de, const N: usize> Visitor<'de> for ArrayVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{N} bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<[u8; N], E> {
        v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
        let mut arr = [0u8; N];
        for (i, slot) in arr.iter_mut().enumerate() {
            *slot = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(i, &self))?;
        }
        if seq.next_element::<u8>()?.is_some() {
            return Err(de::Error::invalid_length(N + 1, &self));
        }
        Ok(arr)
    }
}

/// Serde for a list of `[u8; N]` as one byte string of `N × len` bytes (an
/// authenticator's MACs): `#[serde(with = "crate::byte_arrays::list")]`.
pub mod list {
    use super::*;

    /// Writes the arrays back to back as one byte string.
    pub fn serialize<S: Serializer, const N: usize>(
        items: &[[u8; N]],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(items.as_flattened())
    }

    /// Reads a byte string whose length is a multiple of N (anything else is refused),
    /// or a sequence of N-byte arrays.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<Vec<[u8; N]>, D::Error> {
        d.deserialize_bytes(ListVisitor::<N>(PhantomData))
    }

    struct ListVisitor<const N: usize>(PhantomData<[u8; N]>);

    impl<'de, const N: usize> Visitor<'de> for ListVisitor<N> {
        type Value = Vec<[u8; N]>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a multiple of {N} bytes")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<[u8; N]>, E> {
            let (chunks, rest) = v.as_chunks::<N>();
            if !rest.is_empty() {
                return Err(E::invalid_length(v.len(), &self));
            }
            Ok(chunks.to_vec())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<[u8; N]>, A::Error> {
            #[derive(serde::Deserialize)]
            struct Item<const M: usize>(#[serde(with = "crate::byte_arrays")] [u8; M]);
            let mut out = Vec::new();
            while let Some(Item(item)) = seq.next_element::<Item<N>>()? {
                out.push(item);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Fixed(#[serde(with = "crate::byte_arrays")] [u8; 4]);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct List(#[serde(with = "crate::byte_arrays::list")] Vec<[u8; 2]>);

    fn config() -> impl bincode::config::Config {
        bincode::config::standard()
    }

    #[test]
    fn arrays_travel_as_one_byte_string() {
        let bytes = bincode::serde::encode_to_vec(Fixed([1, 2, 3, 4]), config()).unwrap();
        assert_eq!(
            bytes,
            vec![4, 1, 2, 3, 4],
            "a length prefix, then the bytes"
        );
        let (back, _): (Fixed, usize) =
            bincode::serde::decode_from_slice(&bytes, config()).unwrap();
        assert_eq!(back, Fixed([1, 2, 3, 4]));
    }

    #[test]
    fn a_wrong_length_is_refused() {
        for bytes in [vec![3, 1, 2, 3], vec![5, 1, 2, 3, 4, 5]] {
            let r: Result<(Fixed, usize), _> = bincode::serde::decode_from_slice(&bytes, config());
            assert!(r.is_err(), "{bytes:?}");
        }
        let r: Result<(List, usize), _> =
            bincode::serde::decode_from_slice(&[3, 1, 2, 3], config());
        assert!(r.is_err(), "3 bytes are not whole 2-byte items");
    }

    #[test]
    fn lists_travel_flat_and_read_back() {
        let list = List(vec![[1, 2], [3, 4], [5, 6]]);
        let bytes = bincode::serde::encode_to_vec(&list, config()).unwrap();
        assert_eq!(bytes, vec![6, 1, 2, 3, 4, 5, 6]);
        let (back, _): (List, usize) = bincode::serde::decode_from_slice(&bytes, config()).unwrap();
        assert_eq!(back, list);
        let empty = bincode::serde::encode_to_vec(List(vec![]), config()).unwrap();
        assert_eq!(empty, vec![0]);
    }

    #[test]
    fn json_arrays_of_numbers_still_read() {
        let fixed: Fixed = serde_json::from_str("[1,2,3,4]").unwrap();
        assert_eq!(fixed, Fixed([1, 2, 3, 4]));
        assert!(serde_json::from_str::<Fixed>("[1,2,3]").is_err());
        let list: List = serde_json::from_str("[[1,2],[3,4]]").unwrap();
        assert_eq!(list, List(vec![[1, 2], [3, 4]]));
    }
}
