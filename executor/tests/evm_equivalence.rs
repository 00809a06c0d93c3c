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
//! fee; with fees charged (EIP-1559 caps on every transaction, a base fee, a
//! workload account as the block beneficiary, so that transactions send to and
//! from it and pay from its balance while its tips are deferred), and senders too
//! poor for gas limit × max fee + value.

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
    /// Charge fees: a base fee, EIP-1559 caps on every transaction (`fee_caps`)
    /// and workload account 1 as the block beneficiary.
    fees: bool,
}

/// The fee caps `check` gives transaction `i` of a batch under base fee
/// `FEE_BASE`: priority fees 0 to 3, max fees from below the base fee (every
/// eleventh: refused) to above base + priority (then capped by it).
fn fee_caps(i: usize) -> Eip1559Fees {
    let max = if i % 11 == 5 {
        FEE_BASE - 1
    } else {
        FEE_BASE + 3 * (i as u128 % 3)
    };
    Eip1559Fees {
        max_fee_per_gas: max,
        max_priority_fee_per_gas: (i as u128 % 4).min(max),
    }
}

/// The base fee of cases with fees, wei per gas.
const FEE_BASE: u128 = 1_000_000_000;

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
        (
            prop::sample::select(vec![EvmAuth::Channel, EvmAuth::Secp256k1]),
            any::<bool>(),
        ),
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
                (auth, fees),
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
                    fees,
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
    let mut config = case.config;
    if case.fees {
        config.base_fee = FEE_BASE as u64;
        config.beneficiary = accounts.addresses()[1];
    }
    let config = config;
    let mut reference = genesis.clone();
    let mut runs: Vec<(String, Box<dyn Executor<EvmVm>>, EvmState)> =
        executors(config, case.threads)
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
        if case.fees {
            txs = txs
                .into_iter()
                .enumerate()
                .map(|(i, t)| t.with_eip1559_fees(fee_caps(i)))
                .collect();
        }
        if case.lists {
            txs = attach_access_lists(&reference, &txs, &config);
        }
        let txs: Vec<EvmTx> = txs
            .into_iter()
            .map(|t| accounts.sign(t, config.chain_id))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let expected = execute_batch(&mut reference, &txs.clone(), &config);
        statuses.extend(expected.iter().map(|r| status_name(&r.status)));
        let digest = reference.digest();
        for (name, executor, state) in &mut runs {
            let out = executor.execute(state, &txs.clone());
            compare(&expected, &out.receipts).map_err(|e| format!("{name}, batch {b}: {e}"))?;
            if executor.digest(state) != digest || *state != reference {
                return Err(format!("{name}, batch {b}: state differs"));
            }
            let touches_beneficiary = txs.iter().any(|t| {
                t.sender() == config.beneficiary || t.recipient() == Some(config.beneficiary)
            });
            if *name == format!("access-list x{}", case.threads)
                && case.lists
                && !touches_beneficiary
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
        EvmStatus::InsufficientFunds => "insufficient funds",
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
                    fees: true,
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
                fees: tight,
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

/// EIP-1559 fee caps and gas prices against a base fee of 1 gwei, in one signed
/// batch of every form: legacy and type-1 transactions at gas price 0 and type-2
/// ones whose max fee is below the base fee are refused (`MaxFeeBelowBaseFee`),
/// type-2 ones whose priority fee is above their max fee too
/// (`PriorityFeeAboveMaxFee`), with no gas and no budget reserved; the workloads'
/// gas price (2 gwei), their type-2 caps (max fee 3 gwei) and others run, and pay.
/// Every executor gives the same receipts, gas and state.
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
                // Legacy or type 1 at the workloads' gas price (or the workloads'
                // type 2 by nonce), or at gas price 0 < base fee.
                0 if i % 4 == 0 => tx.clone().with_gas_price(0),
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
            None if tx.gas_price < gwei => Some(EvmStatus::MaxFeeBelowBaseFee),
            None => None,
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
    // Both kinds of refusal, the workloads' own type-2 caps and gas price among
    // those that run.
    assert!(txs.iter().any(|t| t.eip1559 == Some(WORKLOAD_FEES)));
    assert!(txs.iter().any(|t| t.gas_price == 2 * gwei));
    assert!(txs.iter().any(|t| t.gas_price == 0 && t.eip1559.is_none()));
    assert!(expected.iter().any(|r| r.fee > 0));
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

/// Fees and the deferred beneficiary credit (issue 15 item 2), in batches built to
/// hit every case: independent ERC-20 transfers paying fees (legacy-priced at
/// base fee 0 they pay nothing; here type 2 with a priority fee, so every one
/// credits the beneficiary) — under Block-STM on two threads no transaction
/// conflicts with another and nothing falls back, as the credit is deferred —;
/// then a batch in which transactions touch the beneficiary: a transfer to it, a
/// transfer from it (it pays its own fee from its balance, tips included), a
/// contract reading BALANCE of it, and a sender too poor for gas limit × max fee
/// (`InsufficientFunds`, nothing changes). Each sees exactly the balance
/// sequential revm gives it, on every executor; the parallel ones fall back to in
/// order for that batch.
#[test]
fn evm_executors_agree_on_fees_and_transactions_touching_the_beneficiary() {
    use tandem_executor::evm::{Address, U256};
    let spec = EvmWorkloadSpec {
        kind: EvmWorkloadKind::Erc20,
        accounts: 64,
        instances: 1,
        zipf: 0.0,
        seed: 21,
    };
    let (mut genesis, deployment) = spec.genesis().unwrap();
    let beneficiary = Address::repeat_byte(0xbe);
    let poor = Address::repeat_byte(0x99);
    // Enough for 21,000 gas at the base fee, not at the max fee asked.
    genesis.fund(poor, U256::from(21_000u64 * 1_000_000_000));
    genesis.fund(beneficiary, U256::from(10u64.pow(18)));
    let config = EvmConfig {
        base_fee: 1_000_000_000,
        beneficiary,
        ..EvmConfig::default()
    };
    let caps = |max: u128, priority: u128| Eip1559Fees {
        max_fee_per_gas: max,
        max_priority_fee_per_gas: priority,
    };
    let gwei = 1_000_000_000u128;
    // Independent transfers: 32 distinct senders to 32 distinct receivers.
    let mut nonces = std::collections::HashMap::new();
    let mut next_nonce = |a: Address| {
        let n = nonces.entry(a).or_insert(0u64);
        *n += 1;
        *n - 1
    };
    let transfer = |to: Address, amount: u64| {
        let mut data = tandem_executor::evm::selector("transfer(address,uint256)").to_vec();
        data.extend_from_slice(&[0; 12]);
        data.extend_from_slice(to.as_slice());
        data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
        data
    };
    let user = tandem_executor::evm::account_address;
    let token = deployment.tokens[0];
    let independent: Vec<EvmTx> = (0..32)
        .map(|i| {
            let from = user(i);
            EvmTx::call(
                from,
                token,
                U256::ZERO,
                next_nonce(from),
                100_000,
                transfer(user(32 + i), 5),
            )
            .with_eip1559_fees(caps(3 * gwei, (1 + i as u128 % 3) * gwei))
        })
        .collect();
    // A contract returning BALANCE(COINBASE): 41 31 60 00 52 60 20 60 00 f3,
    // deployed by an init code returning it.
    let mut init = vec![
        0x69, 0x41, 0x31, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3,
    ];
    init.extend_from_slice(&[0x60, 0x00, 0x52, 0x60, 0x0a, 0x60, 0x16, 0xf3]);
    let deployer = user(40);
    let create = EvmTx::create(deployer, next_nonce(deployer), 200_000, init)
        .with_eip1559_fees(caps(2 * gwei, gwei));
    let balance_reader = create.created_address().unwrap();
    let mut touching: Vec<EvmTx> = vec![create];
    for i in 0..6u64 {
        let from = user(41 + i);
        touching.push(
            EvmTx::call(
                from,
                token,
                U256::ZERO,
                next_nonce(from),
                100_000,
                transfer(user(i), 1),
            )
            .with_eip1559_fees(caps(2 * gwei, gwei)),
        );
    }
    // To the beneficiary, from it, and a read of its balance, between fee payers.
    let to_it = EvmTx::call(
        user(50),
        beneficiary,
        U256::from(777u64),
        next_nonce(user(50)),
        21_000,
        vec![],
    )
    .with_eip1559_fees(caps(2 * gwei, gwei));
    let from_it = EvmTx::call(
        beneficiary,
        user(51),
        U256::from(10u64.pow(15)),
        next_nonce(beneficiary),
        21_000,
        vec![],
    )
    .with_eip1559_fees(caps(3 * gwei, 2 * gwei));
    let read_it = EvmTx::call(
        deployer,
        balance_reader,
        U256::ZERO,
        next_nonce(deployer),
        50_000,
        vec![],
    )
    .with_eip1559_fees(caps(2 * gwei, gwei));
    let too_poor = EvmTx::call(poor, user(52), U256::ZERO, 0, 21_000, vec![])
        .with_eip1559_fees(caps(2 * gwei, gwei));
    touching.insert(3, to_it);
    touching.insert(5, from_it);
    touching.push(too_poor);
    touching.push(read_it);
    let mut reference = genesis.clone();
    let first = execute_batch(&mut reference, &independent, &config);
    assert!(first.iter().all(|r| r.status.is_success()), "{first:?}");
    let tips: u128 = first.iter().map(|r| r.tip).sum();
    let fees: u128 = first.iter().map(|r| r.fee).sum();
    assert!(tips > 0 && fees > tips, "tips {tips}, fees {fees}");
    assert_eq!(
        reference.balance(beneficiary),
        genesis.balance(beneficiary) + U256::from(tips)
    );
    let after_first = reference.clone();
    let second = execute_batch(&mut reference, &touching, &config);
    let n = touching.len();
    assert_eq!(second[n - 2].status, EvmStatus::InsufficientFunds);
    assert_eq!((second[n - 2].gas_used, second[n - 2].fee), (0, 0));
    assert_eq!(reference.nonce(poor), 0);
    assert!(
        second[..n - 2].iter().all(|r| r.status.is_success()),
        "{second:?}"
    );
    // BALANCE(COINBASE) sees every earlier fee credit of the batch, tips of the
    // transactions before it included, and the transfers to and from it.
    let before_read: u128 = second[..n - 1].iter().map(|r| r.tip).sum();
    let from_it_cost = 10u128.pow(15) + second[5].fee;
    let seen = U256::from_be_slice(&second[n - 1].output);
    assert_eq!(
        seen,
        after_first.balance(beneficiary) + U256::from(777u64) + U256::from(before_read)
            - U256::from(from_it_cost)
    );
    let reference_digests = [after_first.digest(), reference.digest()];
    for threads in [1, 2] {
        for (name, mut executor) in executors(config, threads) {
            let mut state = genesis.clone();
            let out = executor.execute(&mut state, &independent);
            compare(&first, &out.receipts).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(executor.digest(&mut state), reference_digests[0], "{name}");
            if name == "block-stm x2" {
                // The deferred credit makes no two of them conflict.
                assert_eq!(out.stats.fallbacks, 0, "{name}");
                assert_eq!(out.stats.validation_aborts, 0, "{name}");
                assert_eq!(out.stats.executions, independent.len() as u64, "{name}");
            }
            let out = executor.execute(&mut state, &touching);
            compare(&second, &out.receipts).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(executor.digest(&mut state), reference_digests[1], "{name}");
            assert_eq!(state, reference, "{name}");
            if name == "block-stm x2" || name == "access-list x2" {
                assert_eq!(out.stats.fallbacks, 1, "{name}: ran in order");
            }
            // The next batch runs speculatively again over the same executor.
            let mut again = state.clone();
            let mut expected_state = reference.clone();
            let third: Vec<EvmTx> = (0..8u64)
                .map(|i| {
                    let from = user(56 + i);
                    EvmTx::call(from, token, U256::ZERO, 0, 100_000, transfer(user(i), 2))
                        .with_eip1559_fees(caps(2 * gwei, gwei))
                })
                .collect();
            let expected = execute_batch(&mut expected_state, &third, &config);
            let out = executor.execute(&mut again, &third);
            compare(&expected, &out.receipts).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(again, expected_state, "{name}");
        }
    }
}

/// Block-STM's declared-hot-key estimate (module docs of `block_stm`): two
/// batches of 1,024 swaps on one pair, every one declaring the pair's reserves:
/// the first falls back after its first segment (a probe that always does), and
/// the second then runs in order at once (one fallback, nothing validated, one
/// execution each); transfers of one token among many holders are speculated on
/// first in both batches, and so is a chain without access lists (no estimate:
/// the segments decide). All give sequential revm's receipts and state.
#[test]
fn block_stm_runs_a_declared_chain_in_order_at_once() {
    let config = EvmConfig::default();
    for (kind, lists, chain) in [
        (EvmWorkloadKind::Uniswap, true, true),
        (EvmWorkloadKind::Erc20, true, false),
        (EvmWorkloadKind::Uniswap, false, false),
    ] {
        let spec = EvmWorkloadSpec {
            kind,
            accounts: 1_000,
            instances: 1,
            zipf: 0.0,
            seed: 9,
        };
        let (genesis, deployment) = spec.genesis().unwrap();
        let mut generator = spec.generator(&genesis, &deployment).unwrap();
        // Segments of 64 and always in order after the first, so that the first
        // batch falls back whatever the machine's timing.
        let mut executor = BlockStmExecutor::for_vm(EvmVm::new(config), 2)
            .unwrap()
            .contention_probe(ContentionProbe::InOrderAfter(64));
        let mut reference = genesis.clone();
        let mut state = genesis.clone();
        for b in 0..2 {
            let mut txs = generator.batch(1_024);
            if lists {
                txs = attach_access_lists(&reference, &txs, &config);
            }
            let expected = execute_batch(&mut reference, &txs, &config);
            let out = executor.execute(&mut state, &txs);
            let label = format!("{kind}, lists {lists}, batch {b}: {:?}", out.stats);
            compare(&expected, &out.receipts).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(executor.digest(&mut state), reference.digest(), "{label}");
            assert!(state == reference, "{label}");
            let at_once = out.stats.validations == 0;
            assert_eq!(out.stats.fallbacks, 1, "{label}");
            if b == 1 && chain {
                assert!(at_once, "{label}");
                assert_eq!(out.stats.executions, 1_024, "{label}");
            } else {
                assert!(!at_once, "speculated on first: {label}");
            }
        }
    }
}
