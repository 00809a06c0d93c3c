//! Genesis for the EVM workloads: fund the accounts with ether, deploy the
//! contracts from `DEPLOYER`, and seed them (mint tokens, approvals, the pools'
//! liquidity, the markets' loan liquidity and collateral, the staking pools' first
//! stake) — all by executing ordinary transactions through `execute_batch`, so
//! genesis is whatever the contracts make of those calls, and refused if any of
//! them fails. Contract addresses follow from CREATE (deployer, nonce).
//!
//! Instance `i` of a two-token contract (pair, market, staking pool) uses tokens
//! `2i` and `2i + 1` of `Deployment::tokens`, so instances share nothing. `evm-mixed`
//! deploys each part's tokens and contracts in turn (`EvmWorkloadKind::MIXED_PARTS`
//! order), its tokens after the earlier parts' — the ERC-20 part's first.

use revm::primitives::{Address, U256};

use super::abi::Abi;
use super::address::{DEPLOYER, account_address};
use super::contracts::Contract;
use super::db::EvmState;
use super::execute::{EvmConfig, execute_batch};
use super::tx::EvmTx;
use super::workload::EvmWorkloadKind;
use crate::error::Error;

/// Ether (wei) every account and the deployer start with.
pub const GENESIS_ETH: u128 = 1_000_000 * 10u128.pow(18);
/// Tokens every account holds of every token its workload uses.
pub const GENESIS_TOKENS: u128 = 1_000_000 * 10u128.pow(18);
/// Each side of every pair's initial reserves (price 1:1).
pub const POOL_RESERVE: u128 = 1_000_000 * 10u128.pow(18);
/// Loan tokens minted to every market.
pub const MARKET_LIQUIDITY: u128 = 1_000_000_000 * 10u128.pow(18);
/// Collateral each account deposits in every market at genesis.
pub const GENESIS_COLLATERAL: u128 = 10_000 * 10u128.pow(18);
/// Collateral factor of the markets, in basis points.
pub const COLLATERAL_FACTOR_BPS: u128 = 7_500;
/// The deployer's stake in every staking pool, so rewards always have a staker.
pub const DEPLOYER_STAKE: u128 = 10u128.pow(18);

const DEPLOY_GAS: u64 = 5_000_000;
const SETUP_GAS: u64 = 1_000_000;

/// Where genesis put the contracts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deployment {
    pub tokens: Vec<Address>,
    pub pairs: Vec<Address>,
    pub markets: Vec<Address>,
    pub staking: Vec<Address>,
}

impl Deployment {
    /// The two tokens of two-token instance `i` (of a single-kind deployment).
    pub fn instance_tokens(&self, i: usize) -> (Address, Address) {
        (self.tokens[2 * i], self.tokens[2 * i + 1])
    }

    /// Genesis for `kind` with `accounts` accounts and `instances` tokens, pairs,
    /// markets or staking pools (ignored for `evm-transfer`); `evm-mixed` deploys
    /// and seeds the contracts of each of its parts in turn, `instances` of each.
    pub fn genesis(
        kind: EvmWorkloadKind,
        accounts: u64,
        instances: u32,
    ) -> Result<(EvmState, Deployment), Error> {
        let users: Vec<Address> = (0..accounts).map(account_address).collect();
        Deployment::genesis_for_users(kind, &users, instances)
    }

    /// `genesis` with the accounts at `users` (the addresses of signing keys under
    /// secp256k1 authentication: `EvmAccounts`).
    pub fn genesis_for_users(
        kind: EvmWorkloadKind,
        users: &[Address],
        instances: u32,
    ) -> Result<(EvmState, Deployment), Error> {
        let users = users.to_vec();
        let mut setup = Setup::new(&users);
        let mut d = Deployment::default();
        let parts: &[EvmWorkloadKind] = match kind {
            EvmWorkloadKind::EvmMixed => &EvmWorkloadKind::MIXED_PARTS,
            _ => std::slice::from_ref(&kind),
        };
        for &part in parts {
            seed(&mut d, part, instances as usize, &users, &mut setup);
        }
        let state = setup.finish()?;
        Ok((state, d))
    }
}

/// Deploys and seeds `n` instances of `kind` (not `evm-mixed`) into `d`: its tokens
/// first (appended to `tokens`; two-token instance `i` uses the `2i`-th and
/// `2i + 1`-th of them), then its contracts.
fn seed(d: &mut Deployment, kind: EvmWorkloadKind, n: usize, users: &[Address], setup: &mut Setup) {
    let base = d.tokens.len();
    let token_count = match kind {
        EvmWorkloadKind::EvmTransfer | EvmWorkloadKind::EvmMixed => 0,
        EvmWorkloadKind::Erc20 => n,
        _ => 2 * n,
    };
    for _ in 0..token_count {
        d.tokens.push(setup.deploy(Contract::Token, Vec::new()));
    }
    let pair_of = |d: &Deployment, i: usize| (d.tokens[base + 2 * i], d.tokens[base + 2 * i + 1]);
    let max = U256::MAX;
    match kind {
        EvmWorkloadKind::EvmTransfer | EvmWorkloadKind::EvmMixed => {}
        EvmWorkloadKind::Erc20 => {
            for &token in &d.tokens[base..] {
                setup.mint_all(token, users, GENESIS_TOKENS);
            }
        }
        EvmWorkloadKind::Uniswap => {
            for i in 0..n {
                let (t0, t1) = pair_of(d, i);
                let args = Abi::default().address(t0).address(t1).finish();
                let pair = setup.deploy(Contract::Pair, args);
                d.pairs.push(pair);
                for t in [t0, t1] {
                    setup.mint_all(t, users, GENESIS_TOKENS);
                    setup.mint(t, DEPLOYER, POOL_RESERVE);
                    setup.approve_all(t, users, pair);
                    setup.call(DEPLOYER, t, approve(pair, max));
                }
                let add = Abi::call("add_liquidity(uint256,uint256)")
                    .u128(POOL_RESERVE)
                    .u128(POOL_RESERVE)
                    .finish();
                setup.call(DEPLOYER, pair, add);
            }
        }
        EvmWorkloadKind::Lending => {
            for i in 0..n {
                let (collateral, loan) = pair_of(d, i);
                let args = Abi::default()
                    .address(collateral)
                    .address(loan)
                    .u128(COLLATERAL_FACTOR_BPS)
                    .finish();
                let market = setup.deploy(Contract::Lending, args);
                d.markets.push(market);
                setup.mint(loan, market, MARKET_LIQUIDITY);
                for t in [collateral, loan] {
                    setup.mint_all(t, users, GENESIS_TOKENS);
                    setup.approve_all(t, users, market);
                }
                let deposit = Abi::call("deposit(uint256)")
                    .u128(GENESIS_COLLATERAL)
                    .finish();
                for &u in users {
                    setup.call(u, market, deposit.clone());
                }
            }
        }
        EvmWorkloadKind::Staking => {
            for i in 0..n {
                let (stake, reward) = pair_of(d, i);
                let args = Abi::default().address(stake).address(reward).finish();
                let pool = setup.deploy(Contract::Staking, args);
                d.staking.push(pool);
                for t in [stake, reward] {
                    setup.mint_all(t, users, GENESIS_TOKENS);
                    setup.approve_all(t, users, pool);
                }
                setup.mint(stake, DEPLOYER, DEPLOYER_STAKE);
                setup.call(DEPLOYER, stake, approve(pool, max));
                setup.call(
                    DEPLOYER,
                    pool,
                    Abi::call("stake(uint256)").u128(DEPLOYER_STAKE).finish(),
                );
            }
        }
    }
}

fn approve(spender: Address, amount: U256) -> Vec<u8> {
    Abi::call("approve(address,uint256)")
        .address(spender)
        .uint(amount)
        .finish()
}

/// Genesis transactions under construction, with the nonces they consume.
struct Setup {
    state: EvmState,
    txs: Vec<EvmTx>,
    nonces: std::collections::BTreeMap<Address, u64>,
}

impl Setup {
    fn new(users: &[Address]) -> Setup {
        let mut state = EvmState::new();
        state.fund(DEPLOYER, U256::from(GENESIS_ETH));
        for &u in users {
            state.fund(u, U256::from(GENESIS_ETH));
        }
        Setup {
            state,
            txs: Vec::new(),
            nonces: Default::default(),
        }
    }

    fn next_nonce(&mut self, from: Address) -> u64 {
        let n = self.nonces.entry(from).or_insert(0);
        *n += 1;
        *n - 1
    }

    /// Queues the deployment of `contract` with ABI-encoded constructor `args`;
    /// returns the address it will have.
    fn deploy(&mut self, contract: Contract, args: Vec<u8>) -> Address {
        let mut init = contract.deploy_code();
        init.extend_from_slice(&args);
        let nonce = self.next_nonce(DEPLOYER);
        let tx = EvmTx::create(DEPLOYER, nonce, DEPLOY_GAS, init);
        let address = tx.created_address().expect("a creation");
        self.txs.push(tx);
        address
    }

    fn call(&mut self, from: Address, to: Address, data: Vec<u8>) {
        let nonce = self.next_nonce(from);
        self.txs
            .push(EvmTx::call(from, to, U256::ZERO, nonce, SETUP_GAS, data));
    }

    fn mint(&mut self, token: Address, to: Address, amount: u128) {
        let data = Abi::call("mint(address,uint256)")
            .address(to)
            .u128(amount)
            .finish();
        self.call(DEPLOYER, token, data);
    }

    fn mint_all(&mut self, token: Address, users: &[Address], amount: u128) {
        for &u in users {
            self.mint(token, u, amount);
        }
    }

    fn approve_all(&mut self, token: Address, users: &[Address], spender: Address) {
        for &u in users {
            self.call(u, token, approve(spender, U256::MAX));
        }
    }

    /// Runs the queued transactions; any failure refuses the genesis.
    fn finish(mut self) -> Result<EvmState, Error> {
        let receipts = execute_batch(&mut self.state, &self.txs, &EvmConfig::unbounded());
        for (i, r) in receipts.iter().enumerate() {
            if !r.status.is_success() {
                return Err(Error::Workload(format!(
                    "EVM genesis transaction {i} failed: {}",
                    r.status
                )));
            }
        }
        Ok(self.state)
    }
}
