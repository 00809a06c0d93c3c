//! Every executor gives exactly the sequential receipts, digest and state, on
//! random batches across contention levels (2 accounts up to 100k, 1 pool up to
//! 64), thread counts 1–8, with invalid transactions (bad nonces, unknown pools,
//! overflow, slippage, bad signatures) mixed in, under cost limits from generous
//! to tight (transactions over the per-transaction limit, batches whose budget runs
//! out), over consecutive batches that reuse the same executor instances.
//! Block-STM also runs with a contention probe of 3 transactions (the rest
//! speculated on or run in order as the probe decides, and always in order).

use std::cell::RefCell;
use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tandem_executor::lending::Market;
use tandem_executor::{
    Account, BlockStmExecutor, ContentionProbe, ExecutionLimits, Executor, ExecutorOptions, FAUCET,
    Key, Op, SmallBankOp, State, Transaction, Value, WorkloadKind, WorkloadSpec, account_keypair,
    account_public_key, amm::Pool, executor_by_name, lending::Position,
};

const TOKENS: u32 = 3;
const KEY_SEED: u64 = 42;

/// Cost limits the cases draw from: the defaults, then tighter ones under which
/// some transactions exceed the per-transaction limit (every signed one in the
/// last) and batches exhaust their budget.
const LIMITS: [ExecutionLimits; 3] = [
    ExecutionLimits {
        max_tx_cost: 1_000_000,
        max_batch_cost: 20_000_000,
    },
    ExecutionLimits {
        max_tx_cost: 1000,
        max_batch_cost: 3000,
    },
    ExecutionLimits {
        max_tx_cost: 100,
        max_batch_cost: 600,
    },
];

fn options(limits: ExecutionLimits) -> ExecutorOptions {
    ExecutorOptions {
        limits,
        ..ExecutorOptions::default()
    }
}

/// The executors under test for one thread count and limits; `auto` twice: with
/// its normal policy and forced onto its parallel path.
fn executors(threads: usize, limits: ExecutionLimits) -> Vec<Box<dyn Executor>> {
    let forced = ExecutorOptions {
        auto_min_batch: 2,
        auto_margin: 1e9,
        limits,
        ..ExecutorOptions::default()
    };
    // Block-STM twice too: as configured (one thread runs in order) and
    // speculating even alone.
    let speculating = ExecutorOptions {
        block_stm_speculate_alone: true,
        ..options(limits)
    };
    // And with a contention probe of 3 transactions: the rest speculated on or
    // run in order as the probe decides, and always in order.
    let probed = |probe| {
        Box::new(
            BlockStmExecutor::new(threads)
                .unwrap()
                .with_limits(limits)
                .contention_probe(probe),
        ) as Box<dyn Executor>
    };
    vec![
        executor_by_name("block-stm", threads, &options(limits)).unwrap(),
        executor_by_name("block-stm", threads, &speculating).unwrap(),
        probed(ContentionProbe::Transactions(3)),
        probed(ContentionProbe::InOrderAfter(3)),
        executor_by_name("access-list", threads, &options(limits)).unwrap(),
        executor_by_name("auto", threads, &options(limits)).unwrap(),
        executor_by_name("auto", threads, &forced).unwrap(),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    accounts: u64,
    pools: u32,
    threads: usize,
    sizes: Vec<usize>,
    signed: bool,
    /// Index into `LIMITS`.
    limits: usize,
    seed: u64,
}

fn amount(rng: &mut ChaCha8Rng) -> u128 {
    match rng.random_range(0..20) {
        0 => 0,
        1 => u128::MAX - rng.random_range(0..1000),
        2 => rng.random_range(1..u128::MAX),
        3..=6 => rng.random_range(1..=1_000_000_000),
        _ => rng.random_range(1..=2000),
    }
}

fn random_state(case: &Case, rng: &mut ChaCha8Rng) -> State {
    let mut entries = Vec::new();
    for p in 0..case.pools {
        let (t0, t1) = (p % TOKENS, (p + 1) % TOKENS);
        let pool = match rng.random_range(0..6) {
            // Empty: the first deposit case.
            0 => Pool::new(t0, t1),
            1 => Pool {
                token0: t0,
                token1: t1,
                reserve0: 2000,
                reserve1: 1500,
                lp_supply: 1700,
            },
            _ => {
                let r: u128 = rng.random_range(1_000_000..1_000_000_000);
                Pool {
                    token0: t0,
                    token1: t1,
                    reserve0: r,
                    reserve1: r + rng.random_range(0..r),
                    lp_supply: r,
                }
            }
        };
        entries.push((Key::Pool(p), Value::Pool(pool)));
    }
    for m in 0..2u32 {
        entries.push((
            Key::Market(m),
            Value::Market(Market {
                total_deposits: 1_000_000,
                ..Market::new(m % TOKENS, 7500)
            }),
        ));
    }
    let funded = case.accounts.min(64);
    for i in 0..funded {
        // Spread the funded accounts over the whole id range.
        let a = 1 + i * (case.accounts / funded);
        for t in 0..TOKENS {
            let bal = match rng.random_range(0..10) {
                0 => 0,
                1 => 10,
                2 => u128::MAX - rng.random_range(0..100),
                _ => rng.random_range(1_000..1_000_000_000_000),
            };
            entries.push((Key::Balance(a, t), Value::Amount(bal)));
        }
        if rng.random_bool(0.3) {
            entries.push((
                Key::Lp(rng.random_range(0..case.pools), a),
                Value::Amount(500),
            ));
        }
        if rng.random_bool(0.3) {
            entries.push((
                Key::Position(rng.random_range(0..2), a),
                Value::Position(Position {
                    deposit: rng.random_range(0..100_000),
                    borrow: 0,
                }),
            ));
        }
        if case.signed && rng.random_bool(0.5) {
            entries.push((
                Key::PublicKey(a),
                Value::PublicKey(account_public_key(KEY_SEED, a).unwrap()),
            ));
        }
    }
    State::from_entries(entries).unwrap()
}

fn pick_account(case: &Case, rng: &mut ChaCha8Rng) -> Account {
    let funded = case.accounts.min(64);
    let stride = case.accounts / funded;
    match rng.random_range(0..10) {
        // Hot accounts: the contention dial.
        0..=3 => 1 + rng.random_range(0..funded.min(3)) * stride,
        4..=8 => 1 + rng.random_range(0..funded) * stride,
        _ => rng.random_range(1..=case.accounts),
    }
}

fn random_op(case: &Case, rng: &mut ChaCha8Rng, sender: Account) -> Op {
    let pool = rng.random_range(0..case.pools + 1); // sometimes unknown
    let (t0, t1) = (pool % TOKENS, (pool + 1) % TOKENS);
    let (a, b) = match rng.random_range(0..10) {
        0 => (t0, rng.random_range(0..TOKENS + 1)),
        1..=4 => (t1, t0),
        _ => (t0, t1),
    };
    let market = rng.random_range(0..3); // 2 is unknown
    let mtoken = if rng.random_bool(0.9) {
        market % TOKENS
    } else {
        rng.random_range(0..TOKENS)
    };
    let to = pick_account(case, rng);
    match rng.random_range(0..16) {
        0..=2 => Op::Transfer {
            to: if rng.random_bool(0.1) { sender } else { to },
            token: rng.random_range(0..TOKENS),
            amount: amount(rng),
        },
        3 => Op::Mint {
            to,
            token: rng.random_range(0..TOKENS),
            amount: amount(rng),
        },
        4..=6 => Op::Swap {
            pool,
            token_in: a,
            token_out: b,
            amount_in: amount(rng),
            min_out: if rng.random_bool(0.3) { amount(rng) } else { 0 },
        },
        7 => Op::AddLiquidity {
            pool,
            token_a: a,
            token_b: b,
            amount_a: amount(rng),
            amount_b: amount(rng),
            min_liquidity: if rng.random_bool(0.2) { amount(rng) } else { 0 },
        },
        8 => Op::RemoveLiquidity {
            pool,
            token_a: a,
            token_b: b,
            liquidity: rng.random_range(0..700),
            min_a: if rng.random_bool(0.2) { amount(rng) } else { 0 },
            min_b: 0,
        },
        9 => Op::Deposit {
            market,
            token: mtoken,
            amount: amount(rng),
        },
        10 => Op::Withdraw {
            market,
            token: mtoken,
            amount: amount(rng),
        },
        11 => Op::Borrow {
            market,
            token: mtoken,
            amount: amount(rng),
        },
        12 => Op::Repay {
            market,
            token: mtoken,
            amount: amount(rng),
        },
        _ => Op::SmallBank(match rng.random_range(0..6) {
            0 => SmallBankOp::Balance,
            1 => SmallBankOp::DepositChecking {
                amount: amount(rng),
            },
            2 => SmallBankOp::TransactSavings {
                amount: rng.random_range(-3000i128..3000),
            },
            3 => SmallBankOp::Amalgamate { to },
            4 => SmallBankOp::WriteCheck {
                amount: amount(rng),
            },
            _ => SmallBankOp::SendPayment {
                to,
                amount: amount(rng),
            },
        }),
    }
}

fn random_batch(
    case: &Case,
    rng: &mut ChaCha8Rng,
    nonces: &mut HashMap<Account, u64>,
    n: usize,
) -> Vec<Transaction> {
    (0..n)
        .map(|_| {
            let sender = if rng.random_range(0..25) == 0 {
                FAUCET
            } else {
                pick_account(case, rng)
            };
            let last = nonces.get(&sender).copied().unwrap_or(0);
            let nonce = match rng.random_range(0..20) {
                0 => last,                          // replay: bad
                1 => last.saturating_sub(1),        // old: bad
                2 => last + rng.random_range(2..5), // gap: fine
                _ => last + 1,
            };
            nonces.insert(sender, nonce.max(last));
            let op = random_op(case, rng, sender);
            // Mostly native cost; sometimes contract-sized work that tight limits refuse.
            let work = if rng.random_range(0..8) == 0 {
                rng.random_range(50..1500)
            } else {
                rng.random_range(0..3)
            };
            let mut tx = Transaction::new(sender, nonce, op).with_work(work);
            if case.signed {
                match rng.random_range(0..10) {
                    0 => {}
                    1 => tx.signature = Some(tandem_executor::Signature([7; 64])),
                    _ => tx
                        .sign(&account_keypair(KEY_SEED, sender).unwrap())
                        .unwrap(),
                }
            }
            tx
        })
        .collect()
}

type Cache = RefCell<HashMap<(usize, usize), Vec<Box<dyn Executor>>>>;

fn check_case(case: &Case, cache: &Cache) -> Result<(), TestCaseError> {
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
    let genesis = random_state(case, &mut rng);
    let mut nonces = HashMap::new();
    let batches: Vec<Vec<Transaction>> = case
        .sizes
        .iter()
        .map(|&n| random_batch(case, &mut rng, &mut nonces, n))
        .collect();

    let mut reference = genesis.clone();
    let limits = LIMITS[case.limits];
    let mut sequential = executor_by_name("sequential", 1, &options(limits)).unwrap();
    let expected: Vec<_> = batches
        .iter()
        .map(|b| {
            let outcome = sequential.execute(&mut reference, b);
            (outcome, sequential.digest(&mut reference))
        })
        .collect();

    let mut cache = cache.borrow_mut();
    let execs = cache
        .entry((case.threads, case.limits))
        .or_insert_with(|| executors(case.threads, limits));
    for exec in execs.iter_mut() {
        let mut state = genesis.clone();
        for (i, (batch, (want, want_digest))) in batches.iter().zip(&expected).enumerate() {
            let got = exec.execute(&mut state, batch);
            prop_assert_eq!(
                &got.receipts,
                &want.receipts,
                "{} threads={} batch {}",
                exec.name(),
                case.threads,
                i
            );
            // The digest is asked after every other batch and after the last, so
            // changes of several batches are folded into the tree together too.
            if i % 2 == 1 || i + 1 == batches.len() {
                let digest = exec.digest(&mut state);
                prop_assert_eq!(digest, *want_digest, "{} batch {}", exec.name(), i);
            }
            prop_assert_eq!(got.stats.transactions, batch.len() as u64);
            prop_assert_eq!(got.stats.gas, want.stats.gas);
        }
        prop_assert!(state == reference, "{} final state differs", exec.name());
        prop_assert_eq!(state.snapshot(), reference.snapshot());
    }
    Ok(())
}

fn run(accounts: impl Strategy<Value = u64>, pools: impl Strategy<Value = u32>, cases: u32) {
    let strategy = (
        accounts,
        pools,
        1usize..=8,
        prop::collection::vec(1usize..120, 1..=3),
        prop::bool::weighted(0.2),
        0..LIMITS.len(),
        any::<u64>(),
    )
        .prop_map(
            |(accounts, pools, threads, sizes, signed, limits, seed)| Case {
                accounts,
                pools,
                threads,
                sizes,
                signed,
                limits,
                seed,
            },
        );
    // PROPTEST_CASES overrides the (CI-sized) count, e.g. for a long stress run.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let cache = RefCell::new(HashMap::new());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |case| check_case(&case, &cache));
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn equivalent_under_high_contention() {
    run(prop::sample::select(vec![2u64, 3, 5]), 1u32..=2, 48);
}

#[test]
fn equivalent_under_medium_contention() {
    run(
        prop::sample::select(vec![16u64, 64, 1000]),
        prop::sample::select(vec![1u32, 2, 8]),
        40,
    );
}

#[test]
fn equivalent_under_low_contention() {
    run(
        prop::sample::select(vec![10_000u64, 100_000]),
        prop::sample::select(vec![8u32, 64]),
        32,
    );
}

/// Generated workloads (the shapes benchmarks use), larger batches, every
/// executor at 1, 2 and 4 threads.
#[test]
fn equivalent_on_generated_workloads() {
    let options = ExecutorOptions {
        auto_min_batch: 2,
        auto_margin: 1e9,
        limits: ExecutionLimits::default(),
        block_stm_speculate_alone: true,
    };
    for (kind, accounts, pools, zipf, signed) in [
        (WorkloadKind::Transfer, 2, 1, 0.0, false),
        (WorkloadKind::Transfer, 100_000, 1, 0.5, false),
        (WorkloadKind::Transfer, 300, 1, 0.8, true),
        (WorkloadKind::Dex, 1000, 1, 0.0, false),
        (WorkloadKind::Dex, 1000, 2, 1.0, false),
        (WorkloadKind::Lending, 100, 1, 1.2, false),
        (WorkloadKind::Smallbank, 50, 1, 0.9, false),
        (WorkloadKind::Mixed, 500, 4, 0.7, false),
    ] {
        let spec = WorkloadSpec {
            kind,
            accounts,
            pools,
            markets: 2,
            zipf,
            signed,
            seed: 11,
            ..WorkloadSpec::default()
        };
        let genesis = spec.genesis().unwrap();
        let mut generator = spec.generator(0, 1).unwrap();
        let batches: Vec<_> = (0..2).map(|_| generator.batch(600)).collect();
        let mut reference = genesis.clone();
        let mut seq = executor_by_name("sequential", 1, &options).unwrap();
        let want: Vec<_> = batches
            .iter()
            .map(|b| {
                let outcome = seq.execute(&mut reference, b);
                (outcome, seq.digest(&mut reference))
            })
            .collect();
        for threads in [1, 2, 4] {
            for name in ["block-stm", "access-list", "auto"] {
                let mut exec = executor_by_name(name, threads, &options).unwrap();
                let mut state = genesis.clone();
                for (b, (w, want_digest)) in batches.iter().zip(&want) {
                    let got = exec.execute(&mut state, b);
                    assert_eq!(got.receipts, w.receipts, "{kind} {name} x{threads}");
                    let digest = exec.digest(&mut state);
                    assert_eq!(digest, *want_digest, "{kind} {name} x{threads}");
                }
                assert!(state == reference);
            }
        }
    }
}

#[test]
fn executor_names_are_checked() {
    let options = ExecutorOptions::default();
    assert!(executor_by_name("block-stn", 2, &options).is_err());
    assert!(executor_by_name("sequential", 0, &options).is_err());
    for name in tandem_executor::EXECUTOR_NAMES {
        assert_eq!(executor_by_name(name, 2, &options).unwrap().name(), name);
    }
}

/// Tight limits on a contended workload with contract-sized work: transactions over
/// the limit and beyond the batch budget abort identically on every executor, and
/// both kinds (and operation failures that charge the nonce) actually occur.
#[test]
fn cost_aborts_are_identical_on_every_executor() {
    let spec = WorkloadSpec {
        kind: WorkloadKind::Dex,
        accounts: 40,
        pools: 2,
        zipf: 1.0,
        seed: 5,
        ..WorkloadSpec::default()
    };
    let genesis = spec.genesis().unwrap();
    let mut generator = spec.generator(0, 1).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let batches: Vec<Vec<Transaction>> = (0..3)
        .map(|_| {
            generator
                .batch(400)
                .into_iter()
                .map(|tx| {
                    let work = rng.random_range(0..200);
                    tx.with_work(work)
                })
                .collect()
        })
        .collect();
    let limits = ExecutionLimits {
        max_tx_cost: 200,
        max_batch_cost: 20_000,
    };
    let mut reference = genesis.clone();
    let mut seq = executor_by_name("sequential", 1, &options(limits)).unwrap();
    let want: Vec<_> = batches
        .iter()
        .map(|b| {
            let outcome = seq.execute(&mut reference, b);
            (outcome, seq.digest(&mut reference))
        })
        .collect();
    let count = |reason: &str| {
        want.iter()
            .flat_map(|(o, _)| &o.receipts)
            .filter(|r| r.abort_reason().is_some_and(|a| a.as_str() == reason))
            .count()
    };
    assert!(count("cost_limit") > 0, "no transaction over the limit");
    assert!(count("batch_budget") > 0, "no batch exhausted its budget");
    assert!(
        want.iter()
            .all(|(o, _)| o.stats.gas <= limits.max_batch_cost),
        "a batch spent more than its budget"
    );
    for threads in [2, 4] {
        for mut exec in executors(threads, limits) {
            let mut state = genesis.clone();
            for (b, (w, want_digest)) in batches.iter().zip(&want) {
                let got = exec.execute(&mut state, b);
                assert_eq!(got.receipts, w.receipts, "{} x{threads}", exec.name());
                assert_eq!(exec.digest(&mut state), *want_digest, "{}", exec.name());
                assert_eq!(got.stats.gas, w.stats.gas);
            }
            assert!(state == reference);
        }
    }
}
