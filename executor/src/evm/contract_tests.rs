//! Behaviour of the contracts and of batch execution through revm: ERC-20
//! transfers and their logs, reverts that change nothing, the pair's exact 0.3%
//! formula and k, the lending collateral check, the staking accumulator,
//! out-of-gas, determinism, and the batch gas budget.

use revm::primitives::{Address, U256, keccak256};

use super::abi::Abi;
use super::address::{DEPLOYER, account_address};
use super::db::EvmState;
use super::execute::{EvmConfig, call_view, execute_batch};
use super::genesis::{
    COLLATERAL_FACTOR_BPS, DEPLOYER_STAKE, Deployment, GENESIS_COLLATERAL, GENESIS_TOKENS,
    POOL_RESERVE,
};
use super::receipt::{EvmReceipt, EvmStatus};
use super::tx::EvmTx;
use super::workload::{EvmWorkloadKind, EvmWorkloadSpec};

fn genesis(kind: EvmWorkloadKind, instances: u32) -> (EvmState, Deployment) {
    Deployment::genesis(kind, 8, instances).unwrap()
}

/// Sends one call from `from` (at its current nonce) and commits it.
fn send(state: &mut EvmState, from: Address, to: Address, data: Vec<u8>, gas: u64) -> EvmReceipt {
    let tx = EvmTx::call(from, to, U256::ZERO, state.nonce(from), gas, data);
    execute_batch(state, &[tx], &EvmConfig::default())
        .pop()
        .unwrap()
}

fn view(state: &mut EvmState, to: Address, data: Vec<u8>) -> U256 {
    Abi::decode_uint(&call_view(state, to, data).expect("view call")).expect("a uint256")
}

fn balance_of(state: &mut EvmState, token: Address, who: Address) -> U256 {
    view(
        state,
        token,
        Abi::call("balanceOf(address)").address(who).finish(),
    )
}

fn transfer(to: Address, amount: u128) -> Vec<u8> {
    Abi::call("transfer(address,uint256)")
        .address(to)
        .u128(amount)
        .finish()
}

fn user(i: u64) -> Address {
    account_address(i)
}

#[test]
fn evm_erc20_transfer_moves_balances_and_logs_transfer() {
    let (mut state, d) = genesis(EvmWorkloadKind::Erc20, 1);
    let token = d.tokens[0];
    let r = send(&mut state, user(1), token, transfer(user(2), 250), 100_000);
    assert_eq!(r.status, EvmStatus::Success);
    assert!(
        r.gas_used > 21_000 && r.gas_used < 100_000,
        "{}",
        r.gas_used
    );
    assert_eq!(
        balance_of(&mut state, token, user(1)),
        U256::from(GENESIS_TOKENS - 250)
    );
    assert_eq!(
        balance_of(&mut state, token, user(2)),
        U256::from(GENESIS_TOKENS + 250)
    );
    assert_eq!(r.logs.len(), 1);
    let log = &r.logs[0];
    assert_eq!(log.address, token.into_array());
    let word = |a: Address| {
        let mut w = [0u8; 32];
        w[12..].copy_from_slice(a.as_slice());
        w
    };
    assert_eq!(
        log.topics,
        vec![
            keccak256("Transfer(address,address,uint256)").0,
            word(user(1)),
            word(user(2))
        ]
    );
    assert_eq!(log.data, U256::from(250).to_be_bytes::<32>().to_vec());
}

#[test]
fn evm_erc20_transfer_above_balance_reverts_without_change() {
    let (mut state, d) = genesis(EvmWorkloadKind::Erc20, 1);
    let token = d.tokens[0];
    let storage_before = state.storage_of(token);
    let nonce = state.nonce(user(1));
    let r = send(
        &mut state,
        user(1),
        token,
        transfer(user(2), GENESIS_TOKENS + 1),
        100_000,
    );
    assert_eq!(r.status, EvmStatus::Reverted);
    assert!(r.logs.is_empty());
    assert!(r.gas_used > 21_000 && r.gas_used < 100_000);
    assert_eq!(state.storage_of(token), storage_before);
    // As on Ethereum, a reverted transaction still takes its nonce.
    assert_eq!(state.nonce(user(1)), nonce + 1);
}

#[test]
fn evm_pair_swap_matches_the_formula_and_keeps_k() {
    let (mut state, d) = genesis(EvmWorkloadKind::Uniswap, 1);
    let pair = d.pairs[0];
    let (t0, t1) = d.instance_tokens(0);
    let reserves = |s: &mut EvmState| {
        (
            view(s, pair, Abi::call("reserve0()").finish()),
            view(s, pair, Abi::call("reserve1()").finish()),
        )
    };
    let mut amount_in = U256::from(3) * U256::from(10u128.pow(20)) + U256::from(12_345);
    for (round, zero_for_one) in [true, false, true, true, false].into_iter().enumerate() {
        let (r0, r1) = reserves(&mut state);
        let (reserve_in, reserve_out) = if zero_for_one { (r0, r1) } else { (r1, r0) };
        let expected = amount_in * U256::from(997) * reserve_out
            / (reserve_in * U256::from(1000) + amount_in * U256::from(997));
        let (tin, tout) = if zero_for_one { (t0, t1) } else { (t1, t0) };
        let before_in = balance_of(&mut state, tin, user(3));
        let before_out = balance_of(&mut state, tout, user(3));
        let data = Abi::call("swap(bool,uint256,uint256)")
            .bool(zero_for_one)
            .uint(amount_in)
            .u128(0)
            .finish();
        let r = send(&mut state, user(3), pair, data, 200_000);
        assert_eq!(r.status, EvmStatus::Success, "round {round}");
        assert_eq!(Abi::decode_uint(&r.output), Some(expected), "round {round}");
        assert_eq!(balance_of(&mut state, tin, user(3)), before_in - amount_in);
        assert_eq!(balance_of(&mut state, tout, user(3)), before_out + expected);
        let (n0, n1) = reserves(&mut state);
        assert!(n0 * n1 >= r0 * r1, "k decreased in round {round}");
        // Reserves track the pair's token balances exactly.
        assert_eq!(balance_of(&mut state, t0, pair), n0);
        assert_eq!(balance_of(&mut state, t1, pair), n1);
        // The contract's own pure getAmountOut agrees.
        let quoted = view(
            &mut state,
            pair,
            Abi::call("getAmountOut(uint256,uint256,uint256)")
                .uint(amount_in)
                .uint(reserve_in)
                .uint(reserve_out)
                .finish(),
        );
        assert_eq!(quoted, expected);
        amount_in = amount_in * U256::from(7) / U256::from(3);
    }
    // Slippage protection: asking for more than the formula gives reverts.
    let (r0, r1) = reserves(&mut state);
    let out = U256::from(1000u64) * U256::from(997) * r1
        / (r0 * U256::from(1000) + U256::from(997_000u64));
    let data = Abi::call("swap(bool,uint256,uint256)")
        .bool(true)
        .u128(1000)
        .uint(out + U256::from(1))
        .finish();
    assert_eq!(
        send(&mut state, user(3), pair, data, 200_000).status,
        EvmStatus::Reverted
    );
    assert_eq!(reserves(&mut state), (r0, r1));
    let _ = POOL_RESERVE;
}

#[test]
fn evm_lending_refuses_a_borrow_above_the_collateral_factor() {
    let (mut state, d) = genesis(EvmWorkloadKind::Lending, 1);
    let market = d.markets[0];
    let limit = GENESIS_COLLATERAL * COLLATERAL_FACTOR_BPS / 10_000;
    let borrow = |x: u128| Abi::call("borrow(uint256)").u128(x).finish();
    let r = send(&mut state, user(4), market, borrow(limit + 1), 200_000);
    assert_eq!(r.status, EvmStatus::Reverted);
    let debt = |s: &mut EvmState| {
        view(
            s,
            market,
            Abi::call("debt(address)").address(user(4)).finish(),
        )
    };
    assert_eq!(debt(&mut state), U256::ZERO);
    let r = send(&mut state, user(4), market, borrow(limit), 200_000);
    assert_eq!(r.status, EvmStatus::Success);
    assert_eq!(debt(&mut state), U256::from(limit));
    // At the limit, withdrawing any collateral fails the same check.
    let r = send(
        &mut state,
        user(4),
        market,
        Abi::call("withdraw(uint256)").u128(1).finish(),
        200_000,
    );
    assert_eq!(r.status, EvmStatus::Reverted);
    let r = send(
        &mut state,
        user(4),
        market,
        Abi::call("repay(uint256)").u128(limit).finish(),
        200_000,
    );
    assert_eq!(r.status, EvmStatus::Success);
    assert_eq!(debt(&mut state), U256::ZERO);
}

#[test]
fn evm_staking_accumulator_pays_rewards_in_proportion_to_stake() {
    let (mut state, d) = genesis(EvmWorkloadKind::Staking, 1);
    let pool = d.staking[0];
    let (_, reward) = d.instance_tokens(0);
    let unit = 10u128.pow(18);
    let stake = |x: u128| Abi::call("stake(uint256)").u128(x).finish();
    assert!(
        send(&mut state, user(1), pool, stake(unit), 250_000)
            .status
            .is_success()
    );
    assert!(
        send(&mut state, user(2), pool, stake(3 * unit), 250_000)
            .status
            .is_success()
    );
    // Total stake is 5 units with the deployer's one: 1 : 3 : 1.
    assert_eq!(DEPLOYER_STAKE, unit);
    let notify = Abi::call("notify_reward(uint256)").u128(50 * unit).finish();
    assert!(
        send(&mut state, user(5), pool, notify, 250_000)
            .status
            .is_success()
    );
    // A later staker earns nothing from earlier rewards.
    assert!(
        send(&mut state, user(6), pool, stake(10 * unit), 250_000)
            .status
            .is_success()
    );
    let pending = |s: &mut EvmState, who: Address| {
        view(s, pool, Abi::call("pending(address)").address(who).finish())
    };
    assert_eq!(pending(&mut state, user(1)), U256::from(10 * unit));
    assert_eq!(pending(&mut state, user(2)), U256::from(30 * unit));
    assert_eq!(pending(&mut state, DEPLOYER), U256::from(10 * unit));
    assert_eq!(pending(&mut state, user(6)), U256::ZERO);
    let before = balance_of(&mut state, reward, user(2));
    let r = send(
        &mut state,
        user(2),
        pool,
        Abi::call("claim()").finish(),
        250_000,
    );
    assert!(r.status.is_success());
    assert_eq!(Abi::decode_uint(&r.output), Some(U256::from(30 * unit)));
    assert_eq!(
        balance_of(&mut state, reward, user(2)),
        before + U256::from(30 * unit)
    );
    assert_eq!(pending(&mut state, user(2)), U256::ZERO);
}

#[test]
fn evm_out_of_gas_uses_the_limit_and_changes_nothing_but_the_nonce() {
    let (mut state, d) = genesis(EvmWorkloadKind::Erc20, 1);
    let token = d.tokens[0];
    let storage_before = state.storage_of(token);
    let eth_before = state.balance(user(1));
    let nonce = state.nonce(user(1));
    // Enough for the intrinsic cost, not for two cold storage writes.
    let r = send(&mut state, user(1), token, transfer(user(2), 5), 30_000);
    assert_eq!(r.status, EvmStatus::OutOfGas);
    assert_eq!(r.gas_used, 30_000);
    assert!(r.logs.is_empty());
    assert_eq!(state.storage_of(token), storage_before);
    assert_eq!(state.balance(user(1)), eth_before, "gas price 0: no fee");
    assert_eq!(state.nonce(user(1)), nonce + 1);
    // Below the intrinsic cost the transaction is invalid: not even the nonce moves.
    let r = send(&mut state, user(1), token, transfer(user(2), 5), 20_000);
    assert!(matches!(r.status, EvmStatus::Invalid(_)), "{:?}", r.status);
    assert_eq!(r.gas_used, 0);
    assert_eq!(state.nonce(user(1)), nonce + 1);
    // A wrong nonce likewise.
    let tx = EvmTx::call(
        user(1),
        token,
        U256::ZERO,
        nonce,
        100_000,
        transfer(user(2), 5),
    );
    let r = execute_batch(&mut state, &[tx], &EvmConfig::default())
        .pop()
        .unwrap();
    assert!(matches!(r.status, EvmStatus::Invalid(_)), "{:?}", r.status);
    assert_eq!(state.storage_of(token), storage_before);
    // An invalid transaction leaves nothing behind for the next one in its batch.
    let stale = EvmTx::call(
        user(1),
        token,
        U256::ZERO,
        nonce,
        100_000,
        transfer(user(2), 5),
    );
    let fresh = EvmTx::call(
        user(1),
        token,
        U256::ZERO,
        nonce + 1,
        100_000,
        transfer(user(2), 7),
    );
    let rs = execute_batch(&mut state, &[stale, fresh], &EvmConfig::default());
    assert!(matches!(rs[0].status, EvmStatus::Invalid(_)));
    assert_eq!(rs[1].status, EvmStatus::Success);
    assert_eq!(
        balance_of(&mut state, token, user(2)),
        U256::from(GENESIS_TOKENS + 7)
    );
}

#[test]
fn evm_same_batch_from_same_genesis_gives_same_digest_and_receipts() {
    for kind in EvmWorkloadKind::ALL {
        let spec = EvmWorkloadSpec {
            accounts: 30,
            instances: 2,
            zipf: 1.2,
            seed: 11,
            ..EvmWorkloadSpec::new(kind)
        };
        let (genesis, deployment) = spec.genesis().unwrap();
        let txs = spec.generator(&genesis, &deployment).unwrap().batch(300);
        let run = || {
            let mut state = genesis.clone();
            let first = execute_batch(&mut state, &txs[..150], &EvmConfig::default());
            let second = execute_batch(&mut state, &txs[150..], &EvmConfig::default());
            (state.digest(), [first, second].concat())
        };
        let (digest, receipts) = run();
        assert_eq!(run(), (digest, receipts.clone()), "{kind}");
        assert_ne!(digest, genesis.digest(), "{kind}");
        // One batch or two: same state and receipts.
        let mut whole = genesis.clone();
        assert_eq!(
            execute_batch(&mut whole, &txs, &EvmConfig::default()),
            receipts
        );
        assert_eq!(whole.digest(), digest);
    }
}

#[test]
fn evm_batch_gas_budget_stops_admission_deterministically() {
    let (genesis, d) = genesis(EvmWorkloadKind::Erc20, 1);
    let token = d.tokens[0];
    let txs: Vec<EvmTx> = (0..10u64)
        .map(|i| {
            let from = user(i % 4);
            let nonce = genesis.nonce(from) + i / 4;
            // Transaction 5 asks for more than the per-transaction maximum.
            let gas = if i == 5 { 20_000_000 } else { 100_000 };
            EvmTx::call(from, token, U256::ZERO, nonce, gas, transfer(user(7), 1))
        })
        .collect();
    // Room for six limits of 100,000 and a bit: transaction 5 is refused on its own
    // and does not count, so 0–4 and 6 run, and 7 is the first that does not fit.
    let config = EvmConfig {
        max_batch_gas: 650_000,
        ..EvmConfig::default()
    };
    let mut state = genesis.clone();
    let receipts = execute_batch(&mut state, &txs, &config);
    let statuses: Vec<&EvmStatus> = receipts.iter().map(|r| &r.status).collect();
    for i in [0, 1, 2, 3, 4, 6] {
        assert_eq!(statuses[i], &EvmStatus::Success, "tx {i}");
    }
    assert_eq!(statuses[5], &EvmStatus::GasLimitAboveMax);
    for i in 7..10 {
        assert_eq!(statuses[i], &EvmStatus::BatchGasBudgetExhausted, "tx {i}");
        assert_eq!(receipts[i].gas_used, 0);
        assert_eq!(statuses[i].to_string(), "batch gas budget exhausted");
    }
    // Admission charged limits, not gas used: the same split on a rerun.
    let mut again = genesis.clone();
    assert_eq!(execute_batch(&mut again, &txs, &config), receipts);
    assert_eq!(again.digest(), state.digest());
    assert_eq!(
        balance_of(&mut state, token, user(7)),
        U256::from(GENESIS_TOKENS + 6)
    );
}

#[test]
fn evm_plain_transfer_and_value_above_balance() {
    let (mut state, _) = genesis(EvmWorkloadKind::EvmTransfer, 1);
    let (a, b) = (user(0), user(1));
    let (ea, eb) = (state.balance(a), state.balance(b));
    let tx = EvmTx::call(a, b, U256::from(1234), state.nonce(a), 21_000, Vec::new());
    let r = execute_batch(&mut state, &[tx], &EvmConfig::default())
        .pop()
        .unwrap();
    assert_eq!((r.status, r.gas_used), (EvmStatus::Success, 21_000));
    assert_eq!(state.balance(a), ea - U256::from(1234));
    assert_eq!(state.balance(b), eb + U256::from(1234));
    let before = state.digest();
    let tx = EvmTx::call(
        a,
        b,
        state.balance(a) + U256::from(1),
        state.nonce(a),
        21_000,
        Vec::new(),
    );
    let r = execute_batch(&mut state, &[tx], &EvmConfig::default())
        .pop()
        .unwrap();
    assert_eq!(r.status, EvmStatus::InsufficientFunds);
    assert_eq!((r.gas_used, r.fee), (0, 0));
    assert_eq!(state.digest(), before);
}

/// An EIP-1559 transaction runs as its legacy twin (same status, gas, logs and
/// output) but pays gas used × its effective gas price `min(max_fee, base_fee +
/// priority_fee)`, which revm shows it (GASPRICE); the beneficiary gets gas used ×
/// (effective price − base fee), the rest is burned; fee caps that do not fit the
/// base fee are refused before it runs, changing nothing, not even the nonce.
#[test]
fn evm_eip1559_transactions_pay_their_effective_gas_price() {
    use super::execute::DEFAULT_BENEFICIARY;
    use super::tx::Eip1559Fees;
    let caps = |max, priority| Eip1559Fees {
        max_fee_per_gas: max,
        max_priority_fee_per_gas: priority,
    };
    let (genesis, deployment) = genesis(EvmWorkloadKind::Erc20, 1);
    let token = deployment.tokens[0];
    let legacy = EvmTx::call(
        user(0),
        token,
        U256::ZERO,
        0,
        100_000,
        transfer(user(1), 77),
    );
    let mut one = genesis.clone();
    let mut two = genesis.clone();
    let a = execute_batch(
        &mut one,
        std::slice::from_ref(&legacy),
        &EvmConfig::default(),
    );
    let typed = legacy.clone().with_eip1559_fees(caps(50, 7));
    let b = execute_batch(&mut two, &[typed], &EvmConfig::default());
    assert!(a[0].status.is_success());
    let gas = u128::from(a[0].gas_used);
    assert_eq!((a[0].fee, a[0].tip), (0, 0), "gas price 0");
    // Base fee 0: the effective price is the priority fee, all of it a tip.
    assert_eq!((b[0].fee, b[0].tip), (7 * gas, 7 * gas));
    assert_eq!(
        (&a[0].status, a[0].gas_used, &a[0].logs, &a[0].output),
        (&b[0].status, b[0].gas_used, &b[0].logs, &b[0].output)
    );
    assert_eq!(one.balance(user(0)), genesis.balance(user(0)));
    assert_eq!(
        two.balance(user(0)),
        genesis.balance(user(0)) - U256::from(7 * gas)
    );
    assert_eq!(two.balance(DEFAULT_BENEFICIARY), U256::from(7 * gas));
    assert_eq!(one.balance(DEFAULT_BENEFICIARY), U256::ZERO);

    // A contract returning GASPRICE: 3a 60 00 52 60 20 60 00 f3, deployed by an
    // init code returning it.
    let mut init = vec![0x68, 0x3a, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3];
    init.extend_from_slice(&[0x60, 0x00, 0x52, 0x60, 0x09, 0x60, 0x17, 0xf3]);
    let mut state = genesis.clone();
    let deployer = user(2);
    let create = EvmTx::create(deployer, 0, 200_000, init);
    let gas_price_contract = create.created_address().unwrap();
    let r = execute_batch(&mut state, &[create], &EvmConfig::default());
    assert!(r[0].status.is_success(), "{:?}", r[0]);
    let config = EvmConfig {
        base_fee: 10,
        ..EvmConfig::default()
    };
    let ask = |nonce, fees: Option<Eip1559Fees>| {
        let tx = EvmTx::call(
            deployer,
            gas_price_contract,
            U256::ZERO,
            nonce,
            50_000,
            vec![],
        );
        match fees {
            Some(f) => tx.with_eip1559_fees(f),
            None => tx,
        }
    };
    // min(50, 10 + 7) = 17; min(12, 10 + 7) = 12.
    let (paid_before, tips_before) = (state.balance(deployer), state.balance(DEFAULT_BENEFICIARY));
    let r = execute_batch(
        &mut state,
        &[ask(1, Some(caps(50, 7))), ask(2, Some(caps(12, 7)))],
        &config,
    );
    assert_eq!(U256::from_be_slice(&r[0].output), U256::from(17));
    assert_eq!(U256::from_be_slice(&r[1].output), U256::from(12));
    let (g0, g1) = (u128::from(r[0].gas_used), u128::from(r[1].gas_used));
    assert_eq!((r[0].fee, r[0].tip), (17 * g0, 7 * g0));
    assert_eq!((r[1].fee, r[1].tip), (12 * g1, 2 * g1));
    assert_eq!(
        state.balance(deployer),
        paid_before - U256::from(17 * g0 + 12 * g1)
    );
    assert_eq!(
        state.balance(DEFAULT_BENEFICIARY),
        tips_before + U256::from(7 * g0 + 2 * g1)
    );
    // Refusals: a priority fee above the max fee, a max fee below the base fee, a
    // legacy transaction (gas price 0) under a base fee; nothing changes.
    let before = state.clone();
    let r = execute_batch(
        &mut state,
        &[
            ask(3, Some(caps(20, 21))),
            ask(3, Some(caps(9, 0))),
            ask(3, None),
        ],
        &config,
    );
    let statuses: Vec<_> = r.iter().map(|r| (r.status.clone(), r.gas_used)).collect();
    assert_eq!(
        statuses,
        [
            (EvmStatus::PriorityFeeAboveMaxFee, 0),
            (EvmStatus::MaxFeeBelowBaseFee, 0),
            (EvmStatus::MaxFeeBelowBaseFee, 0),
        ]
    );
    assert_eq!(state, before);
    // The legacy one runs at base fee 0 (the default).
    let r = execute_batch(&mut state, &[ask(3, None)], &EvmConfig::default());
    assert_eq!(U256::from_be_slice(&r[0].output), U256::ZERO);
}

/// The state digest covers the block beneficiary: settling a tip (`Vm::settle`)
/// changes it, and settling a batch of tips equals settling them one by one.
#[test]
fn evm_digest_covers_the_beneficiarys_credit() {
    use super::execute::DEFAULT_BENEFICIARY;
    use crate::vm::Vm;
    let (genesis, _) = genesis(EvmWorkloadKind::EvmTransfer, 1);
    let vm = super::EvmVm::default();
    let tip = |tip: u128| EvmReceipt {
        tip,
        ..EvmReceipt::refused(EvmStatus::Success)
    };
    let mut once = genesis.clone();
    vm.settle(&mut once, &[tip(5), tip(0), tip(7)]);
    assert_eq!(once.balance(DEFAULT_BENEFICIARY), U256::from(12));
    assert_ne!(once.digest(), genesis.digest());
    let mut each = genesis.clone();
    for t in [5, 0, 7] {
        vm.settle(&mut each, &[tip(t)]);
    }
    assert_eq!(each.digest(), once.digest());
    let mut none = genesis.clone();
    vm.settle(&mut none, &[tip(0)]);
    assert_eq!(none, genesis, "no tip, no beneficiary account");
}
