//! The EVM's in-memory state: accounts (balance, nonce, code hash), code by hash,
//! and storage keyed by (address, slot), behind revm's `Database` (reads) and
//! `DatabaseCommit` (a transaction's changes). Like the ledger's `State`, it never
//! stores a default: a zero storage slot and an empty account (EIP-161: no
//! balance, nonce or code) are absent, so the digest is a function of the
//! meaningful entries only. Ordered maps keep iteration (and the digest) independent
//! of insertion order.

use std::collections::BTreeMap;
use std::convert::Infallible;

use revm::bytecode::Bytecode;
use revm::database_interface::{Database, DatabaseCommit};
use revm::primitives::{Address, AddressMap, B256, Bytes, KECCAK_EMPTY, U256};
use revm::state::{Account, AccountInfo};

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

/// The EVM state (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EvmState {
    pub(super) accounts: BTreeMap<Address, EvmAccount>,
    pub(super) storage: BTreeMap<(Address, U256), U256>,
    pub(super) code: BTreeMap<B256, Bytecode>,
}

impl EvmState {
    pub fn new() -> EvmState {
        EvmState::default()
    }

    /// The account at `address`, if it is not empty.
    pub fn account(&self, address: Address) -> Option<EvmAccount> {
        self.accounts.get(&address).copied()
    }

    pub fn balance(&self, address: Address) -> U256 {
        self.accounts
            .get(&address)
            .map_or(U256::ZERO, |a| a.balance)
    }

    pub fn nonce(&self, address: Address) -> u64 {
        self.accounts.get(&address).map_or(0, |a| a.nonce)
    }

    /// The code deployed at `address` (empty for an externally owned account).
    pub fn code(&self, address: Address) -> Bytes {
        self.accounts
            .get(&address)
            .and_then(|a| self.code.get(&a.code_hash))
            .map_or_else(Bytes::new, |c| c.original_bytes())
    }

    pub fn storage_at(&self, address: Address, slot: U256) -> U256 {
        self.storage
            .get(&(address, slot))
            .copied()
            .unwrap_or(U256::ZERO)
    }

    /// Every non-zero slot of `address`, in slot order.
    pub fn storage_of(&self, address: Address) -> Vec<(U256, U256)> {
        self.storage
            .range((address, U256::ZERO)..=(address, U256::MAX))
            .map(|(&(_, slot), &value)| (slot, value))
            .collect()
    }

    /// Credits `amount` wei to `address` (genesis funding).
    pub fn fund(&mut self, address: Address, amount: U256) {
        let account = self.accounts.entry(address).or_insert(EvmAccount {
            balance: U256::ZERO,
            nonce: 0,
            code_hash: KECCAK_EMPTY,
        });
        account.balance = account.balance.saturating_add(amount);
        if account.is_empty() {
            self.accounts.remove(&address);
        }
    }

    /// Number of accounts and of storage slots held.
    pub fn len(&self) -> (usize, usize) {
        (self.accounts.len(), self.storage.len())
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
                self.storage.remove(&(address, slot));
            }
        }
        if account.is_selfdestructed() {
            self.accounts.remove(&address);
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
            if value.present_value.is_zero() {
                self.storage.remove(&(address, *slot));
            } else {
                self.storage.insert((address, *slot), value.present_value);
            }
        }
        let entry = EvmAccount {
            balance: info.balance,
            nonce: info.nonce,
            code_hash: info.code_hash,
        };
        if entry.is_empty() {
            self.accounts.remove(&address);
        } else {
            self.accounts.insert(address, entry);
        }
    }
}

impl Database for EvmState {
    type Error = Infallible;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Infallible> {
        Ok(self.accounts.get(&address).map(|a| AccountInfo {
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
