//! Every executor runs the EVM exactly as sequential revm does: on random EVM
//! workloads (evm-transfer, erc20, uniswap, staking, lending, evm-mixed) at several contention
//! levels (2 to 64 accounts, uniform or Zipf, one or several contract instances)
//! and thread counts 1 and 2, sequential, Block-STM (also speculating on one
//! thread, and with a contention probe of 3 transactions: deciding, and always
//! in order after it), access-list and auto (also forced onto its parallel path) give
//! `execute_batch`'s receipts (status, gas used, logs, output) and state digest,
//! batch after batch on the same executor instances; with and without EIP-2930
//! access lists, with out-of-gas transactions, gas limits above the maximum and
//! batches whose gas budget runs out; channel-authenticated or signed
//! (secp256k1, senders recovered before execution; legacy, EIP-2930 and EIP-1559
//! transactions mixed), with bad signatures and fee caps that do not fit the base
//! fee.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tandem_executor::evm::{
    Eip1559Fees, EvmAuth, EvmConfig, EvmReceipt, EvmSignature, EvmState, EvmStatus, EvmTx, EvmVm,
    EvmWorkloadKind, EvmWorkloadSpec, SignatureError, WORKLOAD_FEES, attach_access_lists,
    execute_batch,
};
use tandem_executor::{BlockStmExecutor, ContentionProbe, Executor, ExecutorOptions, executor_for};

/// The executors under test at `threads`: each name, plus Block-STM speculating
/// even alone and `auto` forced onto its parallel path.
fn executors(config: EvmConfig, threads: usize) -> Vec<(String, Box<dyn Executor<EvmVm>>)> {
    let vm = EvmVm::new(config);
    let normal = ExecutorOptions::default();
    let speculate = ExecutorOptions {
        block_stm_speculate_alone: true,
        ..ExecutorOptions::default()
    };
    let forced = ExecutorOptions {
        auto_min_batch: 2,
        auto_margin: 1e9,
        ..ExecutorOptions::default()
    };
    let mut out = Vec::new();
    for (name, options, label) in [
        ("sequential", &normal, "sequential"),
        ("block-stm", &normal, "block-stm"),
        ("block-stm", &speculate, "block-stm (speculating alone)"),
        ("access-list", &normal, "access-list"),
        ("auto", &normal, "auto"),
        ("auto", &forced, "auto (forced parallel)"),
    ] {
        let executor = executor_for(vm, name, threads, options).unwrap();
        out.push((format!("{label} x{threads}"), executor));
    }
    for (probe, label) in [
        (ContentionProbe::Transactions(3), "block-stm (probe 3)"),
        (
            ContentionProbe::InOrderAfter(3),
            "block-stm (in order after 3)",
        ),
    ] {
        let executor = BlockStmExecutor::for_vm(vm, threads)
            .unwrap()
            .contention_probe(probe);
        out.push((format!("{label} x{threads}"), Box::new(executor)));
    }
    out
}

/// One case: a workload, its batches and how they are altered.
#[derive(Clone, Debug)]
struct Case {
    spec: EvmWorkloadSpec,
    threads: usize,
    batches: Vec<usize>,
    /// Give every transaction an access list (made from the batch's run).
    lists: bool,
    /// Cut the gas limit of every `n`-th transaction to just above the intrinsic
    /// cost (out of gas for a call that does any work).
    starve_every: Option<usize>,
    config: EvmConfig,
    /// Sign every transaction (after its access list); each executor gets fresh
    /// copies, so it recovers the senders itself.
    auth: EvmAuth,
}

fn kind() -> impl Strategy<Value = EvmWorkloadKind> {
    prop::sample::select(EvmWorkloadKind::ALL.to_vec())
}

fn case() -> impl Strategy<Value = Case> {
    (
        kind(),
        prop::sample::select(vec![2u64, 6, 64]),
        prop::sample::select(vec![1u32, 3]),
        prop::sample::select(vec![0.0f64, 1.2]),
        any::<u64>(),
        1usize..=2,
        prop::collection::vec(12usize..40, 2..=3),
        any::<bool>(),
        prop::option::of(3usize..7),
        any::<bool>(),
        prop::sample::select(vec![EvmAuth::Channel, EvmAuth::Secp256k1]),
    )
        .prop_map(
            |(
                kind,
                accounts,
                instances,
                zipf,
                seed,
                threads,
                batches,
                lists,
                starve,
                tight,
                auth,
            )| {
                let config = if tight {
                    // Room for about two thirds of a batch, and a per-transaction
                    // maximum some workloads' limits exceed.
                    EvmConfig {
                        max_tx_gas: 200_000,
                        max_batch_gas: 20 * kind.gas_limit(),
                        ..EvmConfig::default()
                    }
                } else {
                    EvmConfig::default()
                };
                Case {
                    spec: EvmWorkloadSpec {
                        kind,
                        accounts,
                        instances,
                        zipf,
                        seed,
                    },
                    threads,
                    batches,
                    lists,
                    starve_every: starve,
                    config,
                    auth,
                }
            },
        )
}

/// Runs `case` through every executor and `execute_batch`; the first mismatch.
fn check(case: &Case) -> Result<(), String> {
    let accounts = case.spec.accounts_for(case.auth);
    let (genesis, deployment) = case
        .spec
        .genesis_with(&accounts)
        .map_err(|e| e.to_string())?;
    let mut generator = case
        .spec
        .generator_with(&genesis, &deployment, &accounts)
        .map_err(|e| e.to_string())?;
    let mut reference = genesis.clone();
    let mut runs: Vec<(String, Box<dyn Executor<EvmVm>>, EvmState)> =
        executors(case.config, case.threads)
            .into_iter()
            .map(|(name, e)| (name, e, genesis.clone()))
            .collect();
    let mut statuses = std::collections::BTreeSet::new();
    for (b, &size) in case.batches.iter().enumerate() {
        let mut txs = generator.batch(size);
        if let Some(every) = case.starve_every {
            for tx in txs.iter_mut().step_by(every) {
                tx.gas_limit = 21_000 + 16 * tx.data.len() as u64 + 100;
            }
        }
        if case.lists {
            txs = attach_access_lists(&reference, &txs, &case.config);
        }
        let txs: Vec<EvmTx> = txs
            .into_iter()
            .map(|t| accounts.sign(t, case.config.chain_id))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let expected = execute_batch(&mut reference, &txs.clone(), &case.config);
        statuses.extend(expected.iter().map(|r| status_name(&r.status)));
        let digest = reference.digest();
        for (name, executor, state) in &mut runs {
            let out = executor.execute(state, &txs.clone());
            compare(&expected, &out.receipts).map_err(|e| format!("{name}, batch {b}: {e}"))?;
            if executor.digest(state) != digest || *state != reference {
                return Err(format!("{name}, batch {b}: state differs"));
            }
            if *name == format!("access-list x{}", case.threads)
                && case.lists
                && out.stats.fallbacks != 0
            {
                return Err(format!("{name}, batch {b}: fell back despite access lists"));
            }
        }
    }
    Ok(())
}

fn status_name(s: &EvmStatus) -> &'static str {
    match s {
        EvmStatus::Success => "success",
        EvmStatus::Reverted => "reverted",
        EvmStatus::OutOfGas => "out of gas",
        EvmStatus::Halted(_) => "halted",
        EvmStatus::Invalid(_) => "invalid",
        EvmStatus::GasLimitAboveMax => "above max",
        EvmStatus::BatchGasBudgetExhausted => "budget",
        EvmStatus::BadSignature(_) => "bad signature",
        EvmStatus::PriorityFeeAboveMaxFee => "priority above max fee",
        EvmStatus::MaxFeeBelowBaseFee => "max fee below base fee",
    }
}

fn compare(expected: &[EvmReceipt], got: &[EvmReceipt]) -> Result<(), String> {
    if expected.len() != got.len() {
        return Err(format!(
            "{} receipts, expected {}",
            got.len(),
            expected.len()
        ));
    }
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        if e != g {
            return Err(format!("receipt {i}: {g:?}, expected {e:?}"));
        }
    }
    Ok(())
}

#[test]
fn evm_executors_match_sequential_revm() {
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case(), |case| {
            check(&case).map_err(TestCaseError::fail)?;
            Ok(())
        })
        .unwrap();
}

/// Every workload at the most contended and a spread-out setting, both thread
/// counts, with access lists: the grid the property samples from, covered once.
#[test]
fn evm_executors_match_sequential_revm_on_every_workload() {
    for kind in EvmWorkloadKind::ALL {
        for (accounts, zipf, instances) in [(2, 0.0, 1), (64, 1.2, 3)] {
            for threads in [1, 2] {
                let case = Case {
                    spec: EvmWorkloadSpec {
                        kind,
                        accounts,
                        instances,
                        zipf,
                        seed: 11,
                    },
                    threads,
                    batches: vec![24, 24],
                    lists: true,
                    starve_every: None,
                    config: EvmConfig::default(),
                    auth: EvmAuth::Channel,
                };
                check(&case).unwrap_or_else(|e| panic!("{case:?}: {e}"));
            }
        }
    }
}

/// `evm-mixed` (issue 15 item 5): every part in one batch over one genesis, at one
/// contended and one spread-out setting, with and without access lists, under the
/// default and a tight gas budget, channel-authenticated and signed: every executor
/// gives sequential revm's receipts and digest.
#[test]
fn evm_executors_match_sequential_revm_on_evm_mixed() {
    for (accounts, zipf, instances) in [(4, 0.0, 1), (48, 0.8, 2)] {
        for (lists, tight, auth) in [
            (false, false, EvmAuth::Channel),
            (true, true, EvmAuth::Secp256k1),
        ] {
            let config = if tight {
                EvmConfig {
                    max_tx_gas: 300_000,
                    max_batch_gas: 30 * EvmWorkloadKind::EvmMixed.gas_limit(),
                    ..EvmConfig::default()
                }
            } else {
                EvmConfig::default()
            };
            let case = Case {
                spec: EvmWorkloadSpec {
                    kind: EvmWorkloadKind::EvmMixed,
                    accounts,
                    instances,
                    zipf,
                    seed: 5,
                },
                threads: 2,
                batches: vec![60, 60],
                lists,
                starve_every: None,
                config,
                auth,
            };
            check(&case).unwrap_or_else(|e| panic!("{case:?}: {e}"));
        }
    }
}

/// Out of gas, a gas limit above the maximum and an exhausted batch budget in
/// one batch: every executor refuses and halts the same transactions.
#[test]
fn evm_executors_agree_on_out_of_gas_and_budget_exhaustion() {
    let spec = EvmWorkloadSpec {
        kind: EvmWorkloadKind::Erc20,
        accounts: 16,
        instances: 1,
        zipf: 0.0,
        seed: 3,
    };
    let (genesis, deployment) = spec.genesis().unwrap();
    let plain: Vec<EvmTx> = spec.generator(&genesis, &deployment).unwrap().batch(40);
    let config = EvmConfig {
        max_tx_gas: 200_000,
        max_batch_gas: 3_000_000,
        ..EvmConfig::default()
    };
    for lists in [false, true] {
        let mut txs = if lists {
            attach_access_lists(&genesis, &plain, &config)
        } else {
            plain.clone()
        };
        // Out of gas: enough for the intrinsic cost (more with a list), not for
        // the token transfer.
        let cut = if lists {
            [31_000, 33_000]
        } else {
            [25_000, 30_000]
        };
        txs[1].gas_limit = cut[0];
        txs[7].gas_limit = cut[1];
        // Above the per-transaction maximum.
        txs[4].gas_limit = 300_000;
        let mut reference = genesis.clone();
        let expected = execute_batch(&mut reference, &txs, &config);
        assert_eq!(expected[1].status, EvmStatus::OutOfGas);
        assert_eq!(expected[1].gas_used, cut[0]);
        assert_eq!(expected[7].status, EvmStatus::OutOfGas);
        assert_eq!(expected[4].status, EvmStatus::GasLimitAboveMax);
        let first_refused = expected
            .iter()
            .position(|r| r.status == EvmStatus::BatchGasBudgetExhausted)
            .expect("the budget runs out");
        // 29 full limits and the two cut ones fit in the budget (the one above
        // the maximum reserves nothing).
        assert_eq!(first_refused, 32);
        assert!(
            expected[first_refused..]
                .iter()
                .all(|r| r.status == EvmStatus::BatchGasBudgetExhausted && r.gas_used == 0)
        );
        // Transactions after an out-of-gas one from the same sender still run
        // (the nonce advanced).
        assert!(expected[8..32].iter().any(|r| r.status.is_success()));
        for threads in [1, 2] {
            for (name, mut executor) in executors(config, threads) {
                let mut state = genesis.clone();
                let out = executor.execute(&mut state, &txs);
                compare(&expected, &out.receipts).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(out.stats.gas, 29 * 100_000 + cut[0] + cut[1]);
                assert_eq!(executor.digest(&mut state), reference.digest(), "{name}");
                assert_eq!(state, reference, "{name}");
            }
        }
    }
}

/// Signed batches with bad signatures mixed in (a high s, another chain's, an r of
/// zero, a field changed after signing) and an unsigned transaction: every
/// executor refuses the same ones with the same `BadSignature` receipts (no gas,
/// no budget reserved), recovers the same senders, and reaches the same state.
#[test]
fn evm_executors_agree_on_signed_batches_and_bad_signatures() {
    signed_batches_with_bad_signatures(EvmAuth::Channel);
}

/// The same under `auth = secp256k1`: the unsigned transaction is refused too
/// (`SignatureError::Unsigned`), by every executor, instead of running as the
/// `from` it names (review of 9583c41).
#[test]
fn under_secp256k1_every_executor_refuses_an_unsigned_transaction() {
    signed_batches_with_bad_signatures(EvmAuth::Secp256k1);
}

fn signed_batches_with_bad_signatures(auth: EvmAuth) {
    let spec = EvmWorkloadSpec {
        kind: EvmWorkloadKind::Erc20,
        accounts: 16,
        instances: 1,
        zipf: 0.0,
        seed: 5,
    };
    let accounts = spec.accounts_for(EvmAuth::Secp256k1);
    let (genesis, deployment) = spec.genesis_with(&accounts).unwrap();
    let mut generator = spec
        .generator_with(&genesis, &deployment, &accounts)
        .unwrap();
    let config = EvmConfig {
        max_batch_gas: 35 * 100_000,
        auth,
        ..EvmConfig::default()
    };
    /// n - s for a low s: the same signature's other (high) s.
    fn high(s: [u8; 32]) -> [u8; 32] {
        let n = tandem_executor::evm::U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        (n - tandem_executor::evm::U256::from_be_bytes(s)).to_be_bytes::<32>()
    }
    let mut reference = genesis.clone();
    let mut runs: Vec<_> = [1, 2]
        .into_iter()
        .flat_map(|t| executors(config, t))
        .map(|(name, e)| (name, e, genesis.clone()))
        .collect();
    for lists in [false, true] {
        let mut txs = generator.batch(40);
        if lists {
            txs = attach_access_lists(&reference, &txs, &config);
        }
        let unsigned = txs[20].clone();
        let mut txs: Vec<EvmTx> = txs
            .into_iter()
            .map(|t| accounts.sign(t, config.chain_id).unwrap())
            .collect();
        let resign = |t: &mut EvmTx, f: &dyn Fn(&EvmSignature) -> EvmSignature| {
            let sig = f(t.signature.as_ref().unwrap());
            t.signature = Some(sig);
        };
        resign(&mut txs[3], &|s| {
            EvmSignature::new(s.chain_id, !s.y_parity, s.r, high(s.s))
        });
        resign(&mut txs[5], &|s| EvmSignature::new(1, s.y_parity, s.r, s.s));
        resign(&mut txs[9], &|s| {
            EvmSignature::new(s.chain_id, s.y_parity, [0; 32], s.s)
        });
        txs[12].nonce += 1000;
        txs[20] = unsigned;
        let expected = execute_batch(&mut reference, &txs.clone(), &config);
        for i in [3, 5, 9] {
            assert!(
                matches!(expected[i].status, EvmStatus::BadSignature(_)),
                "{i}: {:?}",
                expected[i]
            );
            assert_eq!(expected[i].gas_used, 0);
        }
        // A changed field recovers another sender: valid signature, unfunded,
        // unknown account, nonce 0 expected: invalid, not a bad signature.
        assert!(
            matches!(expected[12].status, EvmStatus::Invalid(_)),
            "{:?}",
            expected[12]
        );
        // Channel: the unsigned one runs as its `from` (its sender's nonce may
        // have stalled behind a refused transaction: not a signature matter).
        // Secp256k1: it is refused like a bad signature.
        let unsigned_refused = EvmStatus::BadSignature(SignatureError::Unsigned.to_string());
        match auth {
            EvmAuth::Channel => assert!(
                !matches!(expected[20].status, EvmStatus::BadSignature(_)),
                "{:?}",
                expected[20]
            ),
            EvmAuth::Secp256k1 => {
                assert_eq!(expected[20].status, unsigned_refused);
                assert_eq!(expected[20].gas_used, 0);
            }
        }
        // 35 limits fit the budget; refused transactions reserve none.
        let first_refused = expected
            .iter()
            .position(|r| r.status == EvmStatus::BatchGasBudgetExhausted)
            .expect("the budget runs out");
        let refused_before = if auth == EvmAuth::Secp256k1 { 4 } else { 3 };
        assert_eq!(first_refused, 35 + refused_before);
        for (name, executor, state) in &mut runs {
            let out = executor.execute(state, &txs.clone());
            compare(&expected, &out.receipts).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(out.stats.signatures_verified, 39, "{name}");
            assert_eq!(executor.digest(state), reference.digest(), "{name}");
            assert_eq!(*state, reference, "{name}");
        }
    }
}

/// EIP-1559 fee caps against a base fee of 1 gwei, in one signed batch of every
/// form: legacy and type-1 transactions (gas price 0) and type-2 ones whose max fee
/// is below the base fee are refused (`MaxFeeBelowBaseFee`), type-2 ones whose
/// priority fee is above their max fee too (`PriorityFeeAboveMaxFee`), with no gas
/// and no budget reserved; the workloads' type-2 caps (max fee 1 gwei) and higher
/// ones run. Every executor gives the same receipts, gas and state.
#[test]
fn evm_executors_agree_on_fee_caps_against_the_base_fee() {
    let spec = EvmWorkloadSpec {
        kind: EvmWorkloadKind::EvmTransfer,
        accounts: 48,
        instances: 1,
        zipf: 0.0,
        seed: 9,
    };
    let accounts = spec.accounts_for(EvmAuth::Secp256k1);
    let (genesis, deployment) = spec.genesis_with(&accounts).unwrap();
    let plain = spec
        .generator_with(&genesis, &deployment, &accounts)
        .unwrap()
        .batch(40);
    let base_fee = 1_000_000_000u64;
    let config = EvmConfig {
        base_fee,
        max_batch_gas: 30 * 21_000 * 2,
        auth: EvmAuth::Secp256k1,
        ..EvmConfig::default()
    };
    let gwei = u128::from(base_fee);
    let caps = |max, priority| Eip1559Fees {
        max_fee_per_gas: max,
        max_priority_fee_per_gas: priority,
    };
    let listed = attach_access_lists(&genesis, &plain, &config);
    let txs: Vec<EvmTx> = plain
        .iter()
        .zip(&listed)
        .enumerate()
        .map(|(i, (tx, with_list))| {
            let tx = match i % 6 {
                // Legacy or type 1 (gas price 0 < base fee), or the workloads'
                // type 2 by nonce (max fee 1 gwei = base fee).
                0 => tx.clone(),
                1 => with_list.clone(),
                2 => tx.clone().with_eip1559_fees(caps(gwei - 1, 0)),
                3 => tx.clone().with_eip1559_fees(caps(3 * gwei, 3 * gwei + 1)),
                4 => tx.clone().with_eip1559_fees(caps(3 * gwei, gwei)),
                _ => with_list.clone().with_eip1559_fees(caps(gwei, gwei)),
            };
            accounts.sign(tx, config.chain_id).unwrap()
        })
        .collect();
    let mut reference = genesis.clone();
    let expected = execute_batch(&mut reference, &txs, &config);
    let mut runnable = 0u64;
    for (i, (tx, r)) in txs.iter().zip(&expected).enumerate() {
        let want = match tx.eip1559 {
            None => Some(EvmStatus::MaxFeeBelowBaseFee),
            Some(f) if f.max_priority_fee_per_gas > f.max_fee_per_gas => {
                Some(EvmStatus::PriorityFeeAboveMaxFee)
            }
            Some(f) if f.max_fee_per_gas < gwei => Some(EvmStatus::MaxFeeBelowBaseFee),
            Some(_) => None,
        };
        match want {
            Some(status) => {
                assert_eq!((&r.status, r.gas_used), (&status, 0), "{i}");
            }
            None => {
                runnable += 1;
                assert!(
                    !matches!(
                        r.status,
                        EvmStatus::MaxFeeBelowBaseFee | EvmStatus::PriorityFeeAboveMaxFee
                    ),
                    "{i}: {r:?}"
                );
            }
        }
    }
    // Both kinds of refusal, the workloads' own type-2 caps among those that run.
    assert!(txs.iter().any(|t| t.eip1559 == Some(WORKLOAD_FEES)));
    assert!(expected.iter().any(|r| r.status.is_success()));
    assert!(runnable >= 10, "{runnable}");
    for threads in [1, 2] {
        for (name, mut executor) in executors(config, threads) {
            let mut state = genesis.clone();
            let out = executor.execute(&mut state, &txs);
            compare(&expected, &out.receipts).unwrap_or_else(|e| panic!("{name}: {e}"));
            // Only the transactions the fees admit reserve gas.
            assert_eq!(out.stats.gas, runnable * plain[0].gas_limit, "{name}");
            assert_eq!(executor.digest(&mut state), reference.digest(), "{name}");
            assert_eq!(state, reference, "{name}");
        }
    }
}
