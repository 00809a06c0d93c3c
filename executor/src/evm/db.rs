//! The EVM's in-memory state: accounts (balance, nonce, code hash), code by hash,
//! and storage keyed by (address, slot), behind revm's `Database` (reads) and
//! `DatabaseCommit` (a transaction's changes). Like the ledger's `State`, it never
//! stores a default: a zero storage slot and an empty account (EIP-161: no
//! balance, nonce or code) are absent, so the digest is a function of the
//! meaningful entries only. Ordered maps keep iteration (and the digest) independent
//! of insertion order.
//!
//! The maps are split into the 16 state shards of `crate::state::SHARDS`, placed
//! by the top bits of `EvmVm::key_hash` (an account by its address, a slot by
//! (address, slot)), so that a parallel executor's commit applies each shard's
//! writes on its own thread; the digest merges the shards back into one order.

use std::collections::BTreeMap;
use std::convert::Infallible;

use revm::bytecode::Bytecode;
use revm::database_interface::{Database, DatabaseCommit};
use revm::primitives::{Address, AddressMap, B256, Bytes, KECCAK_EMPTY, U256};
use revm::state::{Account, AccountInfo};

use super::vm::{EvmKey, EvmVm};
use crate::state::{SHARDS, shard_of};
use crate::vm::Vm;

/// One account: what revm's `AccountInfo` holds, minus the code itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvmAccount {
    pub balance: U256,
    pub nonce: u64,
    /// keccak-256 of the code, `KECCAK_EMPTY` for an externally owned account.
    pub code_hash: B256,
}

impl EvmAccount {
    fn is_empty(&self) -> bool {
        self.balance.is_zero() && self.nonce == 0 && self.code_hash == KECCAK_EMPTY
    }
}

/// One state shard: the accounts and slots whose keys hash to it (module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct StateShard {
    pub(super) accounts: BTreeMap<Address, EvmAccount>,
    pub(super) storage: BTreeMap<(Address, U256), U256>,
}

/// The state shard holding `address`'s account (all its fields).
#[inline]
pub(super) fn account_shard(address: Address) -> usize {
    shard_of(EvmVm::key_hash(&EvmKey::Balance(address)))
}

/// The state shard holding storage slot (`address`, `slot`).
#[inline]
pub(super) fn slot_shard(address: Address, slot: U256) -> usize {
    shard_of(EvmVm::key_hash(&EvmKey::Slot(address, slot)))
}

/// The EVM state (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvmState {
    /// `SHARDS` shards (module docs).
    pub(super) shards: Box<[StateShard]>,
    pub(super) code: BTreeMap<B256, Bytecode>,
}

impl Default for EvmState {
    fn default() -> EvmState {
        EvmState {
            shards: (0..SHARDS).map(|_| StateShard::default()).collect(),
            code: BTreeMap::new(),
        }
    }
}

impl EvmState {
    pub fn new() -> EvmState {
        EvmState::default()
    }

    /// The map holding `address`'s account.
    #[inline]
    pub(super) fn accounts_of(&self, address: Address) -> &BTreeMap<Address, EvmAccount> {
        &self.shards[account_shard(address)].accounts
    }

    /// The account at `address`, if it is not empty.
    pub fn account(&self, address: Address) -> Option<EvmAccount> {
        self.accounts_of(address).get(&address).copied()
    }

    pub fn balance(&self, address: Address) -> U256 {
        self.account(address).map_or(U256::ZERO, |a| a.balance)
    }

    pub fn nonce(&self, address: Address) -> u64 {
        self.account(address).map_or(0, |a| a.nonce)
    }

    /// The code deployed at `address` (empty for an externally owned account).
    pub fn code(&self, address: Address) -> Bytes {
        self.account(address)
            .and_then(|a| self.code.get(&a.code_hash))
            .map_or_else(Bytes::new, |c| c.original_bytes())
    }

    pub fn storage_at(&self, address: Address, slot: U256) -> U256 {
        self.shards[slot_shard(address, slot)]
            .storage
            .get(&(address, slot))
            .copied()
            .unwrap_or(U256::ZERO)
    }

    /// Every non-zero slot of `address`, in slot order.
    pub fn storage_of(&self, address: Address) -> Vec<(U256, U256)> {
        let mut slots: Vec<(U256, U256)> = self
            .shards
            .iter()
            .flat_map(|s| {
                s.storage
                    .range((address, U256::ZERO)..=(address, U256::MAX))
                    .map(|(&(_, slot), &value)| (slot, value))
            })
            .collect();
        slots.sort_unstable_by_key(|(slot, _)| *slot);
        slots
    }

    /// Credits `amount` wei to `address` (genesis funding).
    pub fn fund(&mut self, address: Address, amount: U256) {
        let accounts = &mut self.shards[account_shard(address)].accounts;
        let account = accounts.entry(address).or_insert(EvmAccount {
            balance: U256::ZERO,
            nonce: 0,
            code_hash: KECCAK_EMPTY,
        });
        account.balance = account.balance.saturating_add(amount);
        if account.is_empty() {
            accounts.remove(&address);
        }
    }

    /// Sets storage slot (`address`, `slot`) (zero removes it).
    pub(super) fn set_storage(&mut self, address: Address, slot: U256, value: U256) {
        let storage = &mut self.shards[slot_shard(address, slot)].storage;
        if value.is_zero() {
            storage.remove(&(address, slot));
        } else {
            storage.insert((address, slot), value);
        }
    }

    /// Number of accounts and of storage slots held.
    pub fn len(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(a, s), shard| {
            (a + shard.accounts.len(), s + shard.storage.len())
        })
    }

    fn commit_account(&mut self, address: Address, account: Account) {
        if !account.is_touched() {
            return;
        }
        if account.is_selfdestructed() || account.is_created() {
            // A destroyed account loses its storage; a created one starts without.
            let slots: Vec<U256> = self
                .storage_of(address)
                .into_iter()
                .map(|(s, _)| s)
                .collect();
            for slot in slots {
                self.set_storage(address, slot, U256::ZERO);
            }
        }
        if account.is_selfdestructed() {
            self.shards[account_shard(address)]
                .accounts
                .remove(&address);
            return;
        }
        let info = &account.info;
        if info.code_hash != KECCAK_EMPTY
            && let Some(code) = &info.code
        {
            self.code
                .entry(info.code_hash)
                .or_insert_with(|| code.clone());
        }
        for (slot, value) in &account.storage {
            if !value.is_changed() {
                continue;
            }
            self.set_storage(address, *slot, value.present_value);
        }
        let entry = EvmAccount {
            balance: info.balance,
            nonce: info.nonce,
            code_hash: info.code_hash,
        };
        let accounts = &mut self.shards[account_shard(address)].accounts;
        if entry.is_empty() {
            accounts.remove(&address);
        } else {
            accounts.insert(address, entry);
        }
    }
}

impl Database for EvmState {
    type Error = Infallible;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Infallible> {
        Ok(self.account(address).map(|a| AccountInfo {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
            code: self.code.get(&a.code_hash).cloned(),
            ..AccountInfo::default()
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Infallible> {
        Ok(self.code.get(&code_hash).cloned().unwrap_or_default())
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, Infallible> {
        Ok(self.storage_at(address, index))
    }

    /// No history: BLOCKHASH is zero (our contracts do not use it).
    fn block_hash(&mut self, _number: u64) -> Result<B256, Infallible> {
        Ok(B256::ZERO)
    }
}

impl DatabaseCommit for EvmState {
    fn commit(&mut self, changes: AddressMap<Account>) {
        // revm's map is a hash map: apply in address order so that nothing here
        // could depend on its iteration order.
        let mut changes: Vec<(Address, Account)> = changes.into_iter().collect();
        changes.sort_unstable_by_key(|(a, _)| *a);
        for (address, account) in changes {
            self.commit_account(address, account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evm_state_drops_empty_accounts_and_reads_back_funding() {
        let mut s = EvmState::new();
        let a = Address::with_last_byte(0x42);
        s.fund(a, U256::ZERO);
        assert_eq!(s.account(a), None);
        s.fund(a, U256::from(5));
        assert_eq!(s.balance(a), U256::from(5));
        let info = s.basic(a).unwrap().unwrap();
        assert_eq!(
            (info.balance, info.nonce, info.code_hash),
            (U256::from(5), 0, KECCAK_EMPTY)
        );
        assert_eq!(s.basic(Address::ZERO).unwrap(), None);
    }
}
