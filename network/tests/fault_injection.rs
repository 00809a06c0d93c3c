//! Tests of the in-memory transport and of the fault layer around it: loss, duplicate,
//! reorder, delay and ramps, flapping links, partitions, isolation and one-way cuts, per
//! direction, changed at run time (also as a whole `FaultRules` value), reproducible
//! from a seed. Assertions count frames; time is virtual (paused tokio clock) where a
//! test depends on it.

use std::time::Duration;

use bytes::Bytes;
use tandem_network::{
    Delay, FaultHandle, FaultRules, FaultyTransport, Flap, Inbound, LinkFaults, LinkRule,
    MemoryHub, MemoryTransport, NodeId, Transport,
};

const WAIT: Duration = Duration::from_secs(5);

fn r(i: u32) -> NodeId {
    NodeId::Replica(i)
}

fn seq_frame(seq: u64) -> Bytes {
    Bytes::copy_from_slice(&seq.to_le_bytes())
}

fn seq_of(frame: &Bytes) -> u64 {
    u64::from_le_bytes(frame.as_ref().try_into().expect("8 bytes"))
}

type Node = (FaultyTransport<MemoryTransport>, Inbound);

fn cluster(n: u32, handle: &FaultHandle, seed: u64) -> Vec<Node> {
    let hub = MemoryHub::default();
    (0..n)
        .map(|i| {
            let (transport, rx) = hub.join(r(i));
            let faulty = FaultyTransport::new(transport, handle.clone(), seed).expect("runtime");
            (faulty, rx)
        })
        .collect()
}

/// Receives frames until none arrives for `quiet` (after at least `min` frames).
async fn drain(rx: &mut Inbound, min: usize, quiet: Duration) -> Vec<(NodeId, Bytes)> {
    let mut frames = Vec::new();
    loop {
        let wait = if frames.len() < min { WAIT } else { quiet };
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => panic!("inbound closed"),
            Err(_) if frames.len() >= min => return frames,
            Err(_) => panic!("only {} of at least {min} frames arrived", frames.len()),
        }
    }
}

#[tokio::test]
async fn memory_transport_delivers_in_order_and_counts() {
    let hub = MemoryHub::new(4);
    let (a, _rx_a) = hub.join(r(0));
    let (b, mut rx_b) = hub.join(r(1));
    for seq in 0..6 {
        a.send(r(1), seq_frame(seq));
    }
    a.send(r(9), seq_frame(0));
    let received: Vec<u64> = (0..4)
        .map(|_| seq_of(&rx_b.try_recv().expect("frame").1))
        .collect();
    assert_eq!(received, vec![0, 1, 2, 3]);
    let counters = a.counters();
    assert_eq!(counters.peer(r(1)).frames_out, 4);
    assert_eq!(
        counters.peer(r(1)).frames_dropped,
        2,
        "inbound capacity is 4"
    );
    assert_eq!(counters.peer(r(9)).frames_dropped, 1, "nobody joined as r9");
    assert_eq!(b.counters().peer(r(0)).frames_in, 4);
    assert!(a.is_connected(r(1)));
    drop(b);
    assert!(!a.is_connected(r(1)));
}

#[tokio::test]
async fn losses_are_counted_and_reproducible_from_the_seed() {
    async fn run(seed: u64) -> (Vec<u64>, u64) {
        let handle = FaultHandle::new();
        let mut nodes = cluster(2, &handle, seed);
        handle.set_link(
            r(0),
            r(1),
            LinkFaults {
                loss: 0.3,
                ..LinkFaults::default()
            },
        );
        for seq in 0..1000 {
            nodes[0].0.send(r(1), seq_frame(seq));
        }
        let dropped = handle.counters().lost;
        let received: Vec<u64> = (0..1000 - dropped)
            .map(|_| seq_of(&nodes[1].1.try_recv().expect("frame").1))
            .collect();
        assert!(nodes[1].1.try_recv().is_err(), "more frames than counted");
        (received, dropped)
    }
    let (first, dropped) = run(42).await;
    assert!(
        (200..400).contains(&dropped),
        "dropped {dropped} of 1000 at p = 0.3"
    );
    assert!(
        first.windows(2).all(|w| w[0] < w[1]),
        "drops must not reorder"
    );
    assert_eq!(
        run(42).await,
        (first.clone(), dropped),
        "same seed, same run"
    );
    assert_ne!(run(43).await.0, first, "another seed, another run");
}

#[tokio::test]
async fn faults_apply_per_direction() {
    let handle = FaultHandle::new();
    let mut nodes = cluster(2, &handle, 1);
    handle.set_link(
        r(0),
        r(1),
        LinkFaults {
            loss: 1.0,
            ..LinkFaults::default()
        },
    );
    for seq in 0..10 {
        nodes[0].0.send(r(1), seq_frame(seq));
        nodes[1].0.send(r(0), seq_frame(seq));
    }
    assert!(nodes[1].1.try_recv().is_err());
    assert_eq!(
        drain(&mut nodes[0].1, 10, Duration::from_millis(20))
            .await
            .len(),
        10
    );
    assert_eq!(handle.counters().lost, 10);

    handle.clear_link(r(0), r(1));
    nodes[0].0.send(r(1), seq_frame(99));
    assert_eq!(seq_of(&nodes[1].1.try_recv().expect("healed").1), 99);
}

#[tokio::test]
async fn duplicates_arrive_twice_in_place() {
    let handle = FaultHandle::new();
    let mut nodes = cluster(2, &handle, 7);
    handle.set_default(Some(LinkFaults {
        duplicate: 1.0,
        ..LinkFaults::default()
    }));
    for seq in 0..50 {
        nodes[0].0.send(r(1), seq_frame(seq));
    }
    let received: Vec<u64> = drain(&mut nodes[1].1, 100, Duration::from_millis(20))
        .await
        .iter()
        .map(|(_, f)| seq_of(f))
        .collect();
    let expected: Vec<u64> = (0..50).flat_map(|s| [s, s]).collect();
    assert_eq!(received, expected);
    assert_eq!(handle.counters().duplicated, 50);
}

#[tokio::test]
async fn reorder_swaps_a_held_frame_with_the_next() {
    let handle = FaultHandle::new();
    let mut nodes = cluster(2, &handle, 3);
    handle.set_link(
        r(0),
        r(1),
        LinkFaults {
            reorder: 1.0,
            ..LinkFaults::default()
        },
    );
    for seq in 0..5 {
        nodes[0].0.send(r(1), seq_frame(seq));
    }
    // 0 held, 1 sent then 0; 2 held, 3 then 2; 4 held until the hold time runs out.
    let received: Vec<u64> = drain(&mut nodes[1].1, 5, Duration::from_millis(20))
        .await
        .iter()
        .map(|(_, f)| seq_of(f))
        .collect();
    assert_eq!(received, vec![1, 0, 3, 2, 4]);
    assert_eq!(handle.counters().reordered, 3);
}

#[tokio::test]
async fn delays_keep_each_link_in_order() {
    let handle = FaultHandle::new();
    let mut nodes = cluster(3, &handle, 11);
    handle.set_link(
        r(0),
        r(1),
        LinkFaults {
            delay: Delay::Fixed(Duration::from_millis(30)),
            ..LinkFaults::default()
        },
    );
    handle.set_link(
        r(0),
        r(2),
        LinkFaults {
            delay: Delay::Normal {
                mean: Duration::from_millis(5),
                std_dev: Duration::from_millis(5),
            },
            ..LinkFaults::default()
        },
    );
    for seq in 0..100 {
        nodes[0].0.send(r(1), seq_frame(seq));
        nodes[0].0.send(r(2), seq_frame(seq));
    }
    // Cleared mid-flight: later frames queue behind the delayed ones.
    handle.clear();
    nodes[0].0.send(r(1), seq_frame(100));
    nodes[0].0.send(r(2), seq_frame(100));
    for peer in [1, 2] {
        let received: Vec<u64> = drain(&mut nodes[peer].1, 101, Duration::from_millis(20))
            .await
            .iter()
            .map(|(_, f)| seq_of(f))
            .collect();
        assert_eq!(
            received,
            (0..=100).collect::<Vec<u64>>(),
            "link r0 -> r{peer}"
        );
    }
    assert!(handle.counters().delayed >= 100);
}

#[tokio::test]
async fn partitions_block_across_groups_until_healed() {
    let handle = FaultHandle::new();
    let mut nodes = cluster(4, &handle, 5);
    handle.partition([vec![r(0), r(1)], vec![r(2), r(3)]]);
    nodes[0].0.send(r(1), seq_frame(1));
    nodes[0].0.send(r(2), seq_frame(2));
    nodes[3].0.send(r(1), seq_frame(3));
    nodes[3].0.send(r(2), seq_frame(4));
    assert_eq!(seq_of(&nodes[1].1.try_recv().expect("same side").1), 1);
    assert_eq!(seq_of(&nodes[2].1.try_recv().expect("same side").1), 4);
    assert!(nodes[1].1.try_recv().is_err() && nodes[2].1.try_recv().is_err());
    assert_eq!(handle.counters().blocked, 2);

    handle.heal();
    nodes[0].0.send(r(2), seq_frame(5));
    assert_eq!(seq_of(&nodes[2].1.try_recv().expect("healed").1), 5);

    handle.isolate(r(3));
    nodes[3].0.send(r(0), seq_frame(6));
    nodes[0].0.send(r(3), seq_frame(7));
    nodes[0].0.send(r(1), seq_frame(8));
    assert!(nodes[0].1.try_recv().is_err() && nodes[3].1.try_recv().is_err());
    assert_eq!(seq_of(&nodes[1].1.try_recv().expect("not isolated").1), 8);
    assert_eq!(handle.counters().blocked, 4);
    handle.heal();
    nodes[3].0.send(r(0), seq_frame(9));
    assert_eq!(seq_of(&nodes[0].1.try_recv().expect("healed").1), 9);
}

#[tokio::test]
async fn a_one_way_cut_blocks_one_direction_until_healed() {
    let handle = FaultHandle::new();
    let mut nodes = cluster(3, &handle, 9);
    handle.one_way_cut(r(0), r(1));
    nodes[0].0.send(r(1), seq_frame(1));
    nodes[1].0.send(r(0), seq_frame(2));
    nodes[0].0.send(r(2), seq_frame(3));
    assert!(nodes[1].1.try_recv().is_err(), "r0 -> r1 is cut");
    assert_eq!(seq_of(&nodes[0].1.try_recv().expect("reverse open").1), 2);
    assert_eq!(seq_of(&nodes[2].1.try_recv().expect("other link").1), 3);
    assert_eq!(handle.counters().blocked, 1);
    handle.heal();
    nodes[0].0.send(r(1), seq_frame(4));
    assert_eq!(seq_of(&nodes[1].1.try_recv().expect("healed").1), 4);
}

#[tokio::test]
async fn a_flapping_link_blocks_while_down() {
    let handle = FaultHandle::new();
    let mut nodes = cluster(2, &handle, 4);
    let always_down = Flap {
        period: Duration::from_secs(3600),
        down: Duration::from_secs(3600),
    };
    handle.set_link(
        r(0),
        r(1),
        LinkFaults {
            flap: Some(always_down),
            ..LinkFaults::default()
        },
    );
    nodes[0].0.send(r(1), seq_frame(1));
    assert!(nodes[1].1.try_recv().is_err(), "down");
    assert_eq!(handle.counters().blocked, 1);
    let never_down = Flap {
        period: Duration::from_secs(3600),
        down: Duration::ZERO,
    };
    handle.set_link(
        r(0),
        r(1),
        LinkFaults {
            flap: Some(never_down),
            ..LinkFaults::default()
        },
    );
    nodes[0].0.send(r(1), seq_frame(2));
    assert_eq!(seq_of(&nodes[1].1.try_recv().expect("up").1), 2);
}

/// What a launcher sends over its control channel: a whole rule set, installed in
/// place of the old one, identical after a trip through the wire encoding.
#[tokio::test]
async fn rules_replace_as_a_whole_and_survive_the_wire() {
    let handle = FaultHandle::new();
    let mut nodes = cluster(4, &handle, 2);
    handle.isolate(r(3));
    let rules = FaultRules {
        default: Some(LinkFaults {
            delay: Delay::Ramp {
                from: Duration::ZERO,
                to: Duration::from_millis(200),
                over: Duration::from_secs(10),
                jitter: Duration::from_millis(5),
            },
            ..LinkFaults::default()
        }),
        links: vec![LinkRule {
            from: r(0),
            to: r(2),
            faults: LinkFaults {
                loss: 1.0,
                ..LinkFaults::default()
            },
        }],
        partition: vec![vec![r(0), r(1)], vec![r(2)]],
        isolated: Vec::new(),
        one_way_cuts: vec![(r(1), r(0))],
    };
    let wire = tandem_network::encode(&rules).unwrap();
    let back: FaultRules = tandem_network::decode(&wire, 1 << 16).unwrap();
    assert_eq!(back, rules);
    handle.replace(back);
    assert_eq!(
        handle.rules(),
        rules,
        "the isolation is gone, the rest is in"
    );

    nodes[1].0.send(r(0), seq_frame(1)); // cut
    nodes[1].0.send(r(2), seq_frame(2)); // partitioned
    nodes[3].0.send(r(0), seq_frame(3)); // no longer isolated; default ramp starts at 0
    assert_eq!(handle.counters().blocked, 2);
    let (from, frame) = drain(&mut nodes[0].1, 1, Duration::from_millis(20))
        .await
        .remove(0);
    assert_eq!((from, seq_of(&frame)), (r(3), 3));

    handle.replace(FaultRules::default());
    assert!(handle.rules().is_empty());
    nodes[1].0.send(r(0), seq_frame(4));
    let (_, frame) = drain(&mut nodes[0].1, 1, Duration::from_millis(20))
        .await
        .remove(0);
    assert_eq!(seq_of(&frame), 4);
}

/// The launcher's control traffic passes a rule set that cuts everything else: a
/// replica's transport exempts the launcher (its replies pass), and a transport that is
/// the launcher's own exempts itself (its requests pass). Without the exemption the
/// replies are blocked like every other frame.
#[tokio::test]
async fn an_exempt_launcher_passes_rules_that_cut_everything() {
    let launcher = NodeId::Client(u32::MAX);
    let hub = MemoryHub::default();
    let handle = FaultHandle::new();
    let join = |id: NodeId, exempt: bool| {
        let (transport, rx) = hub.join(id);
        let faulty = FaultyTransport::new(transport, handle.clone(), 7).expect("runtime");
        let faulty = if exempt {
            faulty.exempt(launcher)
        } else {
            faulty
        };
        (faulty, rx)
    };
    let (r0, mut r0_in) = join(r(0), true);
    let (r1, mut r1_in) = join(r(1), false);
    let (boss, mut boss_in) = join(launcher, true);
    let everything = LinkFaults {
        loss: 1.0,
        ..LinkFaults::default()
    };
    let all = [r(0), r(1), launcher];
    let mut links = Vec::new();
    let mut one_way_cuts = Vec::new();
    for from in all {
        for to in all {
            if from != to {
                links.push(LinkRule {
                    from,
                    to,
                    faults: everything,
                });
                one_way_cuts.push((from, to));
            }
        }
    }
    handle.replace(FaultRules {
        default: Some(everything),
        links,
        partition: vec![vec![r(0)], vec![r(1)], vec![launcher]],
        isolated: all.to_vec(),
        one_way_cuts,
    });

    boss.send(r(0), seq_frame(1));
    r0.send(launcher, seq_frame(2));
    r0.send(r(1), seq_frame(3));
    r1.send(launcher, seq_frame(4));
    let request = tokio::time::timeout(WAIT, r0_in.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((request.0, seq_of(&request.1)), (launcher, 1));
    let reply = tokio::time::timeout(WAIT, boss_in.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((reply.0, seq_of(&reply.1)), (r(0), 2));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(r1_in.try_recv().is_err(), "replica traffic is cut");
    assert!(
        boss_in.try_recv().is_err(),
        "r1 does not exempt the launcher: its frame is cut"
    );
    assert_eq!(handle.counters().blocked, 2);
}
