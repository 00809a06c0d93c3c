//! Genesis for the EVM workloads: fund the accounts with ether, deploy the
//! contracts from `DEPLOYER`, and seed them (mint tokens, approvals, the pools'
//! liquidity, the markets' loan liquidity and collateral, the staking pools' first
//! stake) — all by executing ordinary transactions through `execute_batch`, so
//! genesis is whatever the contracts make of those calls, and refused if any of
//! them fails. Contract addresses follow from CREATE (deployer, nonce).
//!
//! Instance `i` of a two-token contract (pair, market, staking pool) uses tokens
//! `2i` and `2i + 1` of `Deployment::tokens`, so instances share nothing.
//!
//! **Home instances.** An account is seeded in its home instances only
//! ([`home_instances`]: `HOME_INSTANCES` = 2 of them, or every instance when
//! there are fewer), as a DeFi account holds a few tokens and trades in a few
//! pools, not in all of them: it holds the tokens, approvals, collateral and
//! stake of those, and the generator sends its transactions there. So genesis
//! holds state in proportion to the accounts, not to accounts × instances (with
//! 10,000 accounts and 64 pairs, 80,000 token slots instead of 2.56 million),
//! and a run over many instances measures execution rather than walks of a state
//! no real chain holds per account. With one instance every account is at home
//! in it, so the one-instance workloads are unchanged. `evm-mixed`
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
/// Tokens every account holds of every token of its home instances.
pub const GENESIS_TOKENS: u128 = 1_000_000 * 10u128.pow(18);
/// Each side of every pair's initial reserves (price 1:1).
pub const POOL_RESERVE: u128 = 1_000_000 * 10u128.pow(18);
/// Loan tokens minted to every market.
pub const MARKET_LIQUIDITY: u128 = 1_000_000_000 * 10u128.pow(18);
/// Collateral each account deposits in every market it is at home in, at genesis.
pub const GENESIS_COLLATERAL: u128 = 10_000 * 10u128.pow(18);
/// Collateral factor of the markets, in basis points.
pub const COLLATERAL_FACTOR_BPS: u128 = 7_500;
/// The deployer's stake in every staking pool, so rewards always have a staker.
pub const DEPLOYER_STAKE: u128 = 10u128.pow(18);

/// How many instances (tokens, pairs, markets, staking pools of one kind) an
/// account is at home in: seeded there at genesis and trading only there.
pub const HOME_INSTANCES: u32 = 2;

/// The instances of `0..instances` account `account` is at home in (module docs):
/// `min(instances, HOME_INSTANCES)` distinct ones, the first `account % instances`,
/// the others spread evenly after it (`instances / HOME_INSTANCES` apart), so
/// every instance is home to about as many accounts. `instances` must be at
/// least 1.
pub fn home_instances(account: u64, instances: u32) -> impl Iterator<Item = u32> {
    let n = u64::from(instances.max(1));
    let homes = u64::from(instances.clamp(1, HOME_INSTANCES));
    let stride = n / homes;
    (0..homes).map(move |j| ((account % n + j * stride) % n) as u32)
}

/// The accounts at home in each of `n` instances, in account order.
fn residents(users: &[Address], n: usize) -> Vec<Vec<Address>> {
    let mut by_instance = vec![Vec::new(); n];
    for (i, &u) in users.iter().enumerate() {
        for home in home_instances(i as u64, n as u32) {
            by_instance[home as usize].push(u);
        }
    }
    by_instance
}

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
/// `2i + 1`-th of them), then its contracts; each account is seeded in its home
/// instances only.
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
    let at_home = residents(users, n);
    match kind {
        EvmWorkloadKind::EvmTransfer | EvmWorkloadKind::EvmMixed => {}
        EvmWorkloadKind::Erc20 => {
            for (i, &token) in d.tokens[base..].iter().enumerate() {
                setup.mint_all(token, &at_home[i], GENESIS_TOKENS);
            }
        }
        EvmWorkloadKind::Uniswap => {
            for (i, residents) in at_home.iter().enumerate() {
                let (t0, t1) = pair_of(d, i);
                let args = Abi::default().address(t0).address(t1).finish();
                let pair = setup.deploy(Contract::Pair, args);
                d.pairs.push(pair);
                for t in [t0, t1] {
                    setup.mint_all(t, residents, GENESIS_TOKENS);
                    setup.mint(t, DEPLOYER, POOL_RESERVE);
                    setup.approve_all(t, residents, pair);
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
            for (i, residents) in at_home.iter().enumerate() {
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
                    setup.mint_all(t, residents, GENESIS_TOKENS);
                    setup.approve_all(t, residents, market);
                }
                let deposit = Abi::call("deposit(uint256)")
                    .u128(GENESIS_COLLATERAL)
                    .finish();
                for &u in residents {
                    setup.call(u, market, deposit.clone());
                }
            }
        }
        EvmWorkloadKind::Staking => {
            for (i, residents) in at_home.iter().enumerate() {
                let (stake, reward) = pair_of(d, i);
                let args = Abi::default().address(stake).address(reward).finish();
                let pool = setup.deploy(Contract::Staking, args);
                d.staking.push(pool);
                for t in [stake, reward] {
                    setup.mint_all(t, residents, GENESIS_TOKENS);
                    setup.approve_all(t, residents, pool);
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
