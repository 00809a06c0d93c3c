//! Seeded EVM workloads: `evm-transfer` (ether between accounts), `erc20` (token
//! transfers over `instances` tokens), `uniswap` (swaps over `instances` pairs: 1
//! is one contended pool, more are independent pools), `lending` (deposit,
//! withdraw, borrow, repay over `instances` markets), `staking` (stake,
//! unstake, claim, notify_reward over `instances` staking pools) and `evm-mixed`
//! (each transaction one of the five above, drawn uniformly, over a genesis that
//! deploys all their contracts: `instances` of each). The dials are the
//! native workloads' (`workload/`): account count, Zipf skew of sender and
//! receiver choice (0 = uniform, the same sampler) and a seed; the transactions are
//! a function of the spec and the genesis alone. Each account is at home in
//! `HOME_INSTANCES` (2) of the instances (`genesis.rs`: it holds only their
//! tokens, collateral and stake), and a transaction goes to one of its sender's
//! home instances, drawn uniformly; the receiver of a transfer is any account.
//! So instances share nothing, and every instance sees about the same share of
//! the senders (accounts `i`, `i + instances`, … are at home in instance `i`).
//!
//! One stream for now (the native generators' per-client sender slices are not yet
//! mirrored). The generator tracks each sender's nonce, and for lending and staking
//! its debt and stake assuming earlier transactions succeeded, so that repay and
//! unstake stay within them; a transaction that still fails (a budget refusal
//! before it, say) fails deterministically.

use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use revm::primitives::{Address, U256};
use serde::{Deserialize, Serialize};

use super::abi::Abi;
use super::address::EvmAccounts;
use super::db::EvmState;
use super::genesis::{Deployment, HOME_INSTANCES, home_instances};
use super::sender_recovery::EvmAuth;
use super::tx::EvmTx;
use crate::error::Error;
use crate::workload::Chooser;

/// The EVM workload families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvmWorkloadKind {
    EvmTransfer,
    Erc20,
    Uniswap,
    Lending,
    Staking,
    /// The five above in one stream (`EvmWorkloadKind::MIXED_PARTS`).
    EvmMixed,
}

impl EvmWorkloadKind {
    pub const ALL: [EvmWorkloadKind; 6] = [
        EvmWorkloadKind::EvmTransfer,
        EvmWorkloadKind::Erc20,
        EvmWorkloadKind::Uniswap,
        EvmWorkloadKind::Lending,
        EvmWorkloadKind::Staking,
        EvmWorkloadKind::EvmMixed,
    ];

    /// What `evm-mixed` draws each transaction from, uniformly; its genesis deploys
    /// their contracts in this order.
    pub const MIXED_PARTS: [EvmWorkloadKind; 5] = [
        EvmWorkloadKind::EvmTransfer,
        EvmWorkloadKind::Erc20,
        EvmWorkloadKind::Uniswap,
        EvmWorkloadKind::Lending,
        EvmWorkloadKind::Staking,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EvmWorkloadKind::EvmTransfer => "evm-transfer",
            EvmWorkloadKind::Erc20 => "erc20",
            EvmWorkloadKind::Uniswap => "uniswap",
            EvmWorkloadKind::Lending => "lending",
            EvmWorkloadKind::Staking => "staking",
            EvmWorkloadKind::EvmMixed => "evm-mixed",
        }
    }

    /// The gas limit its transactions declare (about twice what they use); for
    /// `evm-mixed` the largest of its parts' (each transaction declares its own
    /// part's).
    pub fn gas_limit(self) -> u64 {
        match self {
            EvmWorkloadKind::EvmTransfer => 30_000,
            EvmWorkloadKind::Erc20 => 100_000,
            EvmWorkloadKind::Uniswap | EvmWorkloadKind::Lending => 200_000,
            EvmWorkloadKind::Staking | EvmWorkloadKind::EvmMixed => 250_000,
        }
    }
}

impl std::fmt::Display for EvmWorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EvmWorkloadKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        EvmWorkloadKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::Workload(format!(
                    "unknown EVM workload `{s}`; expected one of {}",
                    EvmWorkloadKind::ALL.map(EvmWorkloadKind::as_str).join(", ")
                ))
            })
    }
}

/// An EVM workload: kind and dials.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvmWorkloadSpec {
    pub kind: EvmWorkloadKind,
    /// Accounts `0..accounts` (addresses from `account_address`, or under
    /// secp256k1 authentication from `accounts_for`).
    pub accounts: u64,
    /// Tokens (`erc20`), pairs (`uniswap`), markets (`lending`) or staking pools
    /// (`evm-mixed`: that many of each); each account is at home in
    /// `HOME_INSTANCES` of them (all of them if fewer).
    pub instances: u32,
    /// Zipf exponent of sender and receiver choice; 0 is uniform.
    pub zipf: f64,
    pub seed: u64,
}

impl EvmWorkloadSpec {
    pub fn new(kind: EvmWorkloadKind) -> EvmWorkloadSpec {
        EvmWorkloadSpec {
            kind,
            accounts: 1_000,
            instances: 1,
            zipf: 0.0,
            seed: 0,
        }
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.accounts < 2 {
            return Err(Error::Workload(format!(
                "accounts must be at least 2, got {}",
                self.accounts
            )));
        }
        if self.instances == 0 || self.instances > 1024 {
            return Err(Error::Workload(format!(
                "instances must be in 1..=1024, got {}",
                self.instances
            )));
        }
        if !self.zipf.is_finite() || self.zipf < 0.0 {
            return Err(Error::Workload(format!(
                "zipf must be a finite number >= 0, got {}",
                self.zipf
            )));
        }
        Ok(())
    }

    /// The genesis state and where its contracts are.
    pub fn genesis(&self) -> Result<(EvmState, Deployment), Error> {
        self.validate()?;
        Deployment::genesis(self.kind, self.accounts, self.instances)
    }

    /// The accounts under `auth` (secp256k1: their keys derived here, once).
    pub fn accounts_for(&self, auth: EvmAuth) -> EvmAccounts {
        EvmAccounts::new(auth, self.accounts)
    }

    /// `genesis` with `accounts` (from `accounts_for`) as the accounts.
    pub fn genesis_with(&self, accounts: &EvmAccounts) -> Result<(EvmState, Deployment), Error> {
        self.validate()?;
        self.check_accounts(accounts)?;
        Deployment::genesis_for_users(self.kind, accounts.addresses(), self.instances)
    }

    fn check_accounts(&self, accounts: &EvmAccounts) -> Result<(), Error> {
        if accounts.len() != self.accounts {
            return Err(Error::Workload(format!(
                "{} accounts given for a workload of {}",
                accounts.len(),
                self.accounts
            )));
        }
        Ok(())
    }

    /// The transaction stream from `genesis` (which `self.genesis()` made).
    pub fn generator(
        &self,
        genesis: &EvmState,
        deployment: &Deployment,
    ) -> Result<EvmGenerator, Error> {
        self.generator_with(genesis, deployment, &self.accounts_for(EvmAuth::Channel))
    }

    /// The stream from `genesis` (which `genesis_with(accounts)` made), its
    /// transactions unsigned, from `accounts` (sign them with `accounts.sign`,
    /// after attaching any access list).
    pub fn generator_with(
        &self,
        genesis: &EvmState,
        deployment: &Deployment,
        accounts: &EvmAccounts,
    ) -> Result<EvmGenerator, Error> {
        self.validate()?;
        self.check_accounts(accounts)?;
        let n = self.accounts;
        let slots = (n * self.instances as u64) as usize;
        Ok(EvmGenerator {
            spec: self.clone(),
            deployment: deployment.clone(),
            accounts: accounts.clone(),
            rng: ChaCha8Rng::seed_from_u64(self.seed),
            senders: Chooser::new(n, self.zipf)?,
            receivers: Chooser::new(n, self.zipf)?,
            nonces: (0..n).map(|i| genesis.nonce(accounts.address(i))).collect(),
            last_sender: 0,
            debt: vec![0; slots],
            staked: vec![0; slots],
            client: (0, 1),
        })
    }

    /// The stream of load client `index` of `count`: senders only among accounts
    /// `i` with `i % count == index`, so clients never share a sender's nonces
    /// (receivers from all accounts); its own seed unless `index` is 0, so client 0
    /// of 1 is [`EvmWorkloadSpec::generator`].
    pub fn client_generator(
        &self,
        genesis: &EvmState,
        deployment: &Deployment,
        index: u32,
        count: u32,
    ) -> Result<EvmGenerator, Error> {
        let accounts = self.accounts_for(EvmAuth::Channel);
        self.client_generator_with(genesis, deployment, &accounts, index, count)
    }

    /// `client_generator` from `accounts` (see `generator_with`).
    pub fn client_generator_with(
        &self,
        genesis: &EvmState,
        deployment: &Deployment,
        accounts: &EvmAccounts,
        index: u32,
        count: u32,
    ) -> Result<EvmGenerator, Error> {
        if count == 0 || index >= count || u64::from(count) > self.accounts {
            return Err(Error::Workload(format!(
                "load client {index} of {count}: needs index < count <= accounts ({})",
                self.accounts
            )));
        }
        let mut generator = self.generator_with(genesis, deployment, accounts)?;
        generator.client = (u64::from(index), u64::from(count));
        generator.rng = ChaCha8Rng::seed_from_u64(self.seed ^ (u64::from(index) << 32));
        Ok(generator)
    }
}

/// An endless, deterministic stream of EVM transactions (see the module docs).
pub struct EvmGenerator {
    spec: EvmWorkloadSpec,
    deployment: Deployment,
    accounts: EvmAccounts,
    rng: ChaCha8Rng,
    senders: Chooser,
    receivers: Chooser,
    nonces: Vec<u64>,
    /// The sender (account index) of the last generated transaction.
    last_sender: u64,
    /// Per (account, instance): loan debt (lending) or stake (staking) so far.
    debt: Vec<u128>,
    staked: Vec<u128>,
    /// This stream's load client index and the client count (senders `i` with
    /// `i % count == index`).
    client: (u64, u64),
}

/// Largest amount a generated transaction moves (one token, 18 decimals).
const MAX_AMOUNT: u128 = 10u128.pow(18);

impl EvmGenerator {
    /// The accounts it sends from (and their keys, under secp256k1).
    pub fn accounts(&self) -> &EvmAccounts {
        &self.accounts
    }

    /// The account index of the last generated transaction's sender.
    pub fn last_sender(&self) -> u64 {
        self.last_sender
    }

    /// Makes account `sender`'s next transaction use `nonce` if that is below the
    /// nonce it would use: a transaction of it that did not run (refused as invalid,
    /// say a nonce above the chain's after an earlier one was lost) left its nonce
    /// unused, and every later one would fail behind the gap. Unknown accounts are
    /// ignored.
    pub fn rewind_nonce(&mut self, sender: u64, nonce: u64) {
        if let Some(n) = self.nonces.get_mut(sender as usize) {
            *n = (*n).min(nonce);
        }
    }

    pub fn batch(&mut self, n: usize) -> Vec<EvmTx> {
        (0..n).map(|_| self.next_transaction()).collect()
    }

    pub fn next_transaction(&mut self) -> EvmTx {
        let picked = self.senders.pick(&mut self.rng);
        let (index, count) = self.client;
        let mut sender = picked - picked % count + index;
        if sender >= self.spec.accounts {
            sender = index;
        }
        let kind = match self.spec.kind {
            EvmWorkloadKind::EvmMixed => {
                let parts = EvmWorkloadKind::MIXED_PARTS;
                parts[self.rng.random_range(0..parts.len())]
            }
            kind => kind,
        };
        // One of the sender's home instances (`genesis.rs`: where it holds tokens);
        // with one instance, instance 0 as before.
        let homes = self.spec.instances.clamp(1, HOME_INSTANCES);
        let nth = self.rng.random_range(0..homes) as usize;
        let instance = home_instances(sender, self.spec.instances)
            .nth(nth)
            .unwrap_or(0) as usize;
        let amount = self.rng.random_range(1..=MAX_AMOUNT);
        let (to, value, data) = self.op(kind, sender, instance, amount);
        let nonce = self.nonces[sender as usize];
        self.nonces[sender as usize] += 1;
        self.last_sender = sender;
        EvmTx::call(
            self.accounts.address(sender),
            to,
            value,
            nonce,
            kind.gas_limit(),
            data,
        )
        .with_gas_price(super::address::WORKLOAD_GAS_PRICE)
    }

    /// The call of one `kind` transaction (never `evm-mixed`: a part of it).
    fn op(
        &mut self,
        kind: EvmWorkloadKind,
        sender: u64,
        instance: usize,
        amount: u128,
    ) -> (Address, U256, Vec<u8>) {
        let slot = sender as usize * self.spec.instances as usize + instance;
        let d = &self.deployment;
        match kind {
            EvmWorkloadKind::EvmTransfer => {
                let to = self.accounts.address(self.receivers.pick(&mut self.rng));
                (to, U256::from(amount), Vec::new())
            }
            EvmWorkloadKind::Erc20 => {
                let to = self.accounts.address(self.receivers.pick(&mut self.rng));
                let data = Abi::call("transfer(address,uint256)")
                    .address(to)
                    .u128(amount)
                    .finish();
                (d.tokens[instance], U256::ZERO, data)
            }
            EvmWorkloadKind::Uniswap => {
                let zero_for_one = self.rng.random_bool(0.5);
                let data = Abi::call("swap(bool,uint256,uint256)")
                    .bool(zero_for_one)
                    .u128(amount)
                    .u128(0)
                    .finish();
                (d.pairs[instance], U256::ZERO, data)
            }
            EvmWorkloadKind::Lending => {
                let roll = self.rng.random_range(0..100u32);
                let debt = &mut self.debt[slot];
                let data = if roll < 25 {
                    Abi::call("deposit(uint256)").u128(amount).finish()
                } else if roll < 40 {
                    Abi::call("withdraw(uint256)").u128(amount).finish()
                } else if roll < 75 || *debt == 0 {
                    *debt += amount;
                    Abi::call("borrow(uint256)").u128(amount).finish()
                } else {
                    let repay = amount.min(*debt);
                    *debt -= repay;
                    Abi::call("repay(uint256)").u128(repay).finish()
                };
                (d.markets[instance], U256::ZERO, data)
            }
            EvmWorkloadKind::Staking => {
                let roll = self.rng.random_range(0..100u32);
                let staked = &mut self.staked[slot];
                let data = if roll < 10 {
                    Abi::call("notify_reward(uint256)").u128(amount).finish()
                } else if roll < 40 {
                    Abi::call("claim()").finish()
                } else if roll < 60 && *staked >= amount {
                    *staked -= amount;
                    Abi::call("unstake(uint256)").u128(amount).finish()
                } else {
                    *staked += amount;
                    Abi::call("stake(uint256)").u128(amount).finish()
                };
                (d.staking[instance], U256::ZERO, data)
            }
            EvmWorkloadKind::EvmMixed => unreachable!("next_transaction draws a part of evm-mixed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evm::execute::{EvmConfig, execute_batch};
    use crate::evm::{EvmStatus, GENESIS_TOKENS};

    fn small(kind: EvmWorkloadKind, instances: u32) -> EvmWorkloadSpec {
        EvmWorkloadSpec {
            kind,
            accounts: 40,
            instances,
            zipf: 0.8,
            seed: 7,
        }
    }

    #[test]
    fn evm_workloads_are_deterministic_and_mostly_succeed() {
        for kind in EvmWorkloadKind::ALL {
            for instances in [1, 3] {
                let spec = small(kind, instances);
                let (genesis, deployment) = spec.genesis().unwrap();
                let (genesis2, deployment2) = spec.genesis().unwrap();
                assert_eq!(genesis.digest(), genesis2.digest(), "{kind}");
                assert_eq!(deployment, deployment2);
                let txs = spec.generator(&genesis, &deployment).unwrap().batch(200);
                let again = spec.generator(&genesis, &deployment).unwrap().batch(200);
                assert_eq!(txs, again, "{kind}");
                let mut state = genesis.clone();
                let receipts = execute_batch(&mut state, &txs, &EvmConfig::unbounded());
                let ok = receipts.iter().filter(|r| r.status.is_success()).count();
                assert!(
                    ok >= 190,
                    "{kind} x{instances}: only {ok}/200 succeeded: {:?}",
                    receipts.iter().find(|r| !r.status.is_success())
                );
                let gas: u64 = receipts.iter().map(|r| r.gas_used).sum();
                assert!(gas >= 200 * 21_000, "{kind}");
            }
        }
    }

    /// A sender whose transaction was lost before the chain saw it: its later ones
    /// fail as invalid (nonce too high) and, without a rewind, every one after them
    /// too; rewound to the unused nonce, the generator's next transactions of that
    /// sender run again once the lost one is resent.
    #[test]
    fn a_rewound_sender_resumes_after_a_lost_transaction() {
        let spec = EvmWorkloadSpec {
            accounts: 2,
            ..small(EvmWorkloadKind::EvmTransfer, 1)
        };
        let (genesis, deployment) = spec.genesis().unwrap();
        // Client 0 of 2 sends from account 0 only.
        let mut g = spec.client_generator(&genesis, &deployment, 0, 2).unwrap();
        let config = EvmConfig::unbounded();
        let mut state = genesis.clone();
        let lost = g.next_transaction();
        let later = g.batch(3);
        assert_eq!(g.last_sender(), 0);
        let receipts = execute_batch(&mut state, &later, &config);
        assert!(
            receipts
                .iter()
                .all(|r| matches!(r.status, EvmStatus::Invalid(_)))
        );
        // The lost one is resent and runs; the generator's next uses the nonce after
        // the three refused ones unless rewound.
        assert!(
            execute_batch(&mut state, &[lost], &config)[0]
                .status
                .is_success()
        );
        let mut unrewound = spec.client_generator(&genesis, &deployment, 0, 2).unwrap();
        unrewound.batch(4);
        let behind_the_gap = unrewound.next_transaction();
        assert!(matches!(
            execute_batch(&mut state.clone(), &[behind_the_gap], &config)[0].status,
            EvmStatus::Invalid(_)
        ));
        g.rewind_nonce(0, later[0].nonce);
        g.rewind_nonce(7, 0); // no such sender: ignored
        let next = g.batch(2);
        let receipts = execute_batch(&mut state, &next, &config);
        assert!(
            receipts.iter().all(|r| r.status.is_success()),
            "{receipts:?}"
        );
    }

    #[test]
    fn evm_signed_workloads_succeed_as_the_channel_ones() {
        let spec = small(EvmWorkloadKind::Erc20, 1);
        let accounts = spec.accounts_for(EvmAuth::Secp256k1);
        let (genesis, deployment) = spec.genesis_with(&accounts).unwrap();
        let config = EvmConfig::unbounded();
        let txs: Vec<EvmTx> = spec
            .generator_with(&genesis, &deployment, &accounts)
            .unwrap()
            .batch(100)
            .into_iter()
            .map(|t| accounts.sign(t, config.chain_id).unwrap())
            .collect();
        assert!(
            txs.iter()
                .all(|t| t.signature.is_some() && t.from == [0; 20])
        );
        let mut state = genesis.clone();
        let receipts = execute_batch(&mut state, &txs, &config);
        let ok = receipts.iter().filter(|r| r.status.is_success()).count();
        assert!(
            ok >= 95,
            "{ok} of 100: {:?}",
            receipts.iter().find(|r| !r.status.is_success())
        );
        // The accounts must be the spec's.
        assert!(
            spec.genesis_with(&EvmAccounts::new(EvmAuth::Channel, 3))
                .is_err()
        );
    }

    #[test]
    fn evm_client_generators_use_disjoint_senders() {
        let spec = small(EvmWorkloadKind::Erc20, 1);
        let (genesis, deployment) = spec.genesis().unwrap();
        let one = spec.generator(&genesis, &deployment).unwrap().batch(50);
        let same = spec
            .client_generator(&genesis, &deployment, 0, 1)
            .unwrap()
            .batch(50);
        assert_eq!(one, same);
        let mut all = Vec::new();
        for i in 0..3u32 {
            let txs = spec
                .client_generator(&genesis, &deployment, i, 3)
                .unwrap()
                .batch(100);
            for t in &txs {
                let index = u64::from_be_bytes(t.from[12..].try_into().unwrap());
                assert_eq!(index % 3, u64::from(i));
            }
            all.extend(txs);
        }
        let mut state = genesis.clone();
        let receipts = execute_batch(&mut state, &all, &EvmConfig::unbounded());
        let ok = receipts.iter().filter(|r| r.status.is_success()).count();
        assert!(ok >= 290, "{ok} of 300");
        assert!(spec.client_generator(&genesis, &deployment, 3, 3).is_err());
    }

    /// `evm-mixed` sends every part's transactions — ether transfers, token
    /// transfers, swaps, lending and staking calls — each with its part's gas limit,
    /// to the contracts its one genesis deployed, and they mostly succeed.
    #[test]
    fn evm_mixed_sends_every_kind_against_one_genesis() {
        let spec = small(EvmWorkloadKind::EvmMixed, 2);
        let (genesis, d) = spec.genesis().unwrap();
        assert_eq!(
            d.tokens.len(),
            2 + 3 * 4,
            "erc20's 2, then 4 per two-token part"
        );
        assert_eq!((d.pairs.len(), d.markets.len(), d.staking.len()), (2, 2, 2));
        let txs = spec.generator(&genesis, &d).unwrap().batch(500);
        let part = |t: &EvmTx| -> EvmWorkloadKind {
            let to = t.recipient().unwrap();
            if d.tokens[..2].contains(&to) {
                EvmWorkloadKind::Erc20
            } else if d.pairs.contains(&to) {
                EvmWorkloadKind::Uniswap
            } else if d.markets.contains(&to) {
                EvmWorkloadKind::Lending
            } else if d.staking.contains(&to) {
                EvmWorkloadKind::Staking
            } else {
                assert!(t.data.is_empty() && t.value != [0; 32], "{t:?}");
                EvmWorkloadKind::EvmTransfer
            }
        };
        let mut seen = std::collections::BTreeMap::new();
        for t in &txs {
            let kind = part(t);
            assert_eq!(t.gas_limit, kind.gas_limit(), "{kind}");
            *seen.entry(kind.as_str()).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert!(
            seen.values().all(|&n| n >= 60),
            "about a fifth each: {seen:?}"
        );
        let mut state = genesis.clone();
        let receipts = execute_batch(&mut state, &txs, &EvmConfig::unbounded());
        let ok = receipts.iter().filter(|r| r.status.is_success()).count();
        assert!(ok >= 475, "{ok} of 500");
        assert_eq!(
            EvmWorkloadKind::from_str("evm-mixed").unwrap(),
            EvmWorkloadKind::EvmMixed
        );
    }

    /// Each account holds the tokens of its home pairs only and swaps there: the
    /// state grows with the accounts, not with accounts × pairs, and every pair is
    /// home to about as many accounts.
    #[test]
    fn evm_accounts_hold_and_trade_in_their_home_instances_only() {
        use crate::evm::{call_view, home_instances};
        assert_eq!(home_instances(5, 1).collect::<Vec<_>>(), [0]);
        assert_eq!(home_instances(5, 3).collect::<Vec<_>>(), [2, 0]);
        assert_eq!(home_instances(70, 64).collect::<Vec<_>>(), [6, 38]);
        let spec = EvmWorkloadSpec {
            accounts: 64,
            ..small(EvmWorkloadKind::Uniswap, 8)
        };
        let (genesis, d) = spec.genesis().unwrap();
        let few = EvmWorkloadSpec {
            instances: 2,
            ..spec.clone()
        };
        // Per account: two tokens in each of two home pairs, balance and allowance,
        // whether there are 2 pairs or 8 (seeded everywhere, 8 pairs held 4 times
        // the slots of 2).
        let slots = |spec: &EvmWorkloadSpec| spec.genesis().unwrap().0.len().1;
        let (many, two) = (slots(&spec), slots(&few));
        assert!(
            many * 2 < two * 3,
            "{many} slots with 8 pairs, {two} with 2"
        );
        let balance = |state: &EvmState, token: Address, who: Address| {
            let data = Abi::call("balanceOf(address)").address(who).finish();
            let out = call_view(&mut state.clone(), token, data).unwrap();
            U256::from_be_slice(&out)
        };
        let mut residents = vec![0; 8];
        for account in [0u64, 9, 63] {
            let who = crate::evm::account_address(account);
            let homes: Vec<u32> = home_instances(account, 8).collect();
            for pair in 0..8u32 {
                let (t0, t1) = d.instance_tokens(pair as usize);
                let held = if homes.contains(&pair) {
                    GENESIS_TOKENS
                } else {
                    0
                };
                assert_eq!(balance(&genesis, t0, who), U256::from(held));
                assert_eq!(balance(&genesis, t1, who), U256::from(held));
            }
        }
        for account in 0..64 {
            for home in home_instances(account, 8) {
                residents[home as usize] += 1;
            }
        }
        assert_eq!(residents, [16; 8]);
        let txs = spec.generator(&genesis, &d).unwrap().batch(300);
        for t in &txs {
            let sender = u64::from_be_bytes(t.from[12..].try_into().unwrap());
            let to = t.recipient().unwrap();
            let pair = d.pairs.iter().position(|p| *p == to).unwrap() as u32;
            assert!(
                home_instances(sender, 8).any(|h| h == pair),
                "{sender} at {pair}"
            );
        }
        let mut state = genesis.clone();
        let receipts = execute_batch(&mut state, &txs, &EvmConfig::unbounded());
        assert!(receipts.iter().all(|r| r.status.is_success()));
    }

    #[test]
    fn evm_uniswap_instances_spread_over_distinct_pairs() {
        let spec = small(EvmWorkloadKind::Uniswap, 4);
        let (genesis, deployment) = spec.genesis().unwrap();
        let txs = spec.generator(&genesis, &deployment).unwrap().batch(100);
        let pairs: std::collections::BTreeSet<_> = txs.iter().map(|t| t.to).collect();
        assert_eq!(pairs.len(), 4);
        assert!(EvmWorkloadKind::from_str("uniswap").is_ok());
        assert!(EvmWorkloadKind::from_str("dex").is_err());
        assert!(
            EvmWorkloadSpec {
                accounts: 1,
                ..spec
            }
            .validate()
            .is_err()
        );
    }
}
