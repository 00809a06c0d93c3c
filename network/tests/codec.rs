//! Tests of the message codec: round trips, trailing bytes, lying length prefixes, the
//! size limit, and random garbage (an error every time, never a panic or an abort).

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tandem_network::{DecodeError, NodeId, decode, encode};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Message {
    Request {
        client: NodeId,
        number: u64,
        payload: Vec<u8>,
    },
    Vote {
        view: u64,
        digest: [u8; 32],
        voters: Vec<NodeId>,
    },
    Note(String),
}

fn samples() -> Vec<Message> {
    vec![
        Message::Request {
            client: NodeId::Client(3),
            number: u64::MAX,
            payload: vec![1, 2, 3],
        },
        Message::Vote {
            view: 7,
            digest: [9; 32],
            voters: vec![NodeId::Replica(0), NodeId::Replica(2)],
        },
        Message::Note("hello".into()),
    ]
}

#[test]
fn messages_round_trip() {
    for message in samples() {
        let bytes = encode(&message).expect("encode");
        assert_eq!(decode::<Message>(&bytes, 1 << 20).expect("decode"), message);
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = encode(&Message::Note("x".into())).expect("encode").to_vec();
    bytes.push(0);
    assert!(matches!(
        decode::<Message>(&bytes, 1 << 20),
        Err(DecodeError::TrailingBytes { trailing: 1 })
    ));
}

#[test]
fn a_huge_claimed_length_is_an_error_not_an_abort() {
    // Varint marker 0xfd: a u64 follows; it claims 2^40 bytes. 12 bytes in all.
    let mut bytes = vec![0xfd];
    bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
    bytes.extend_from_slice(b"abc");
    assert_eq!(bytes.len(), 12);
    for limit in [16, 4096, 1 << 20, 64 << 20, usize::MAX] {
        assert!(matches!(
            decode::<String>(&bytes, limit),
            Err(DecodeError::Malformed(_))
        ));
        assert!(decode::<Vec<u64>>(&bytes, limit).is_err());
        assert!(decode::<Vec<Vec<u8>>>(&bytes, limit).is_err());
    }
    // The same lie inside an enum variant.
    let mut inside = vec![0u8]; // variant Request
    inside.extend_from_slice(&encode(&NodeId::Client(0)).expect("encode"));
    inside.push(1); // number
    inside.extend_from_slice(&bytes);
    assert!(decode::<Message>(&inside, 1 << 20).is_err());
}

#[test]
fn the_limit_bounds_input_and_claims() {
    let payload = vec![7u8; 1000];
    let bytes = encode(&payload).expect("encode");
    assert!(matches!(
        decode::<Vec<u8>>(&bytes, 100),
        Err(DecodeError::InputTooLarge { limit: 100, .. })
    ));
    assert_eq!(
        decode::<Vec<u8>>(&bytes, bytes.len()).expect("fits"),
        payload
    );

    // A short input claiming a 5000-byte string: over a 4 KiB claim limit it is refused
    // before any allocation; under a larger one it runs out of input. Both are errors.
    let mut claim = vec![0xfb];
    claim.extend_from_slice(&5000u16.to_le_bytes());
    claim.extend_from_slice(&[b'a'; 9]);
    assert!(matches!(
        decode::<String>(&claim, 4096),
        Err(DecodeError::Malformed(
            bincode::error::DecodeError::LimitExceeded
        ))
    ));
    assert!(matches!(
        decode::<String>(&claim, 1 << 20),
        Err(DecodeError::Malformed(
            bincode::error::DecodeError::UnexpectedEnd { .. }
        ))
    ));
    // Sequences are read element by element, so they run out of input instead.
    assert!(matches!(
        decode::<Vec<u8>>(&claim, 4096),
        Err(DecodeError::Malformed(
            bincode::error::DecodeError::UnexpectedEnd { .. }
        ))
    ));
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let valid: Vec<Vec<u8>> = samples()
        .iter()
        .map(|m| encode(m).expect("encode").to_vec())
        .collect();
    let mut decoded = 0;
    for round in 0..20_000 {
        let bytes: Vec<u8> = if round % 2 == 0 {
            let len = rng.random_range(0..64);
            (0..len).map(|_| rng.random()).collect()
        } else {
            // Mutate a valid message in a few places.
            let mut bytes = valid[round % valid.len()].clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] = rng.random();
            }
            bytes
        };
        if decode::<Message>(&bytes, 1 << 16).is_ok() {
            decoded += 1;
        }
    }
    assert!(decoded < 20_000);
}
