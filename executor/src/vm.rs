//! The VM seam: what the schedulers (sequential, Block-STM, access-list, auto) need
//! from a virtual machine, and nothing more. Like Aptos' block executor, which is
//! blind to the Move VM behind its `ExecutorTask`, the schedulers here know a VM
//! only through [`Vm`]: its keys and values, its transactions and receipts, its base
//! state, and one function — [`Vm::execute`] — that applies a transaction against a
//! read view and leaves its writes in a [`WriteSet`]. Everything a scheduler does is
//! decide which view a transaction reads through (the state itself, Block-STM's
//! multi-version memory, or the access-list schedule's outputs) and what happens to
//! the write set; the VM's rules live in one place per VM, so schedulers cannot
//! diverge semantically.
//!
//! Two VMs implement it: the native DeFi ledger (`ledger_vm.rs`, [`LedgerVm`]) and
//! the EVM (`evm/vm.rs`, `EvmVm`). Every scheduler is generic over `V: Vm` and
//! monomorphised per VM, so the seam costs no dynamic dispatch.
//!
//! Contract a VM keeps (each scheduler relies on it):
//! - `execute` reads only through the view and writes only into the write set; its
//!   result is a function of the transaction, its admission verdict and the values
//!   the view returned. A read the view cannot answer (`ReadError`) ends execution
//!   with `Err(Blocked)` (a Block-STM dependency) or an internal-error receipt.
//! - Admission ([`Vm::admit`]) depends on the ordered transactions and the
//!   pre-batch state alone, never on execution, so every scheduler admits the same
//!   set.
//! - Values equal to the default are absent: `read_state` returns `None` for them,
//!   and writing a default removes the entry, so the state (and its digest) is a
//!   function of its meaningful entries only.
//! - `declare`, when it returns `true`, lists every key `execute` may read (and
//!   marks those it may write). The access-list executor trusts it only as far as it
//!   checks it: a read or write outside the declared set is detected and the whole
//!   batch is run sequentially instead (`access_list.rs`).
//! - **Deferred credits** (the EVM's fees to the block beneficiary): what every
//!   transaction would add to one key is not written by `execute` (that would
//!   make every pair of transactions conflict) but left in its receipt, and
//!   [`Vm::settle`] adds it to the state once the transaction's writes are there:
//!   after each transaction in order (the sequential loop), or once per batch for
//!   the transactions a parallel executor ran. `execute` reads such a key only
//!   through [`ReadView::read_credited`], which only a view that holds every
//!   earlier transaction's credit answers (the state under the sequential loop);
//!   a speculative view refuses (`ReadError::Credited`) and its executor runs the
//!   batch in order instead. So a transaction that reads the key sees exactly what
//!   in-order execution gives it, and no speculative execution writes the key.
//!
//! [`LedgerVm`]: crate::LedgerVm

use std::fmt::Debug;
use std::hash::Hash;

use smallvec::SmallVec;

use crate::threads::WorkerThreads;
use crate::tx::Access;

/// Why a view could not answer a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The value is being rewritten by this lower transaction (a Block-STM
    /// ESTIMATE): execution must wait for it.
    Dependency(u32),
    /// The key is outside the transaction's declared set (access-list schedule).
    Undeclared,
    /// A key that earlier transactions' deferred credits change (module docs), read
    /// through a view that does not hold them: the executor runs the batch in
    /// order.
    Credited,
}

/// What a transaction reads through: the value of a key as the transaction being
/// executed should see it (`None`: absent, i.e. the default).
pub trait ReadView<V: Vm> {
    /// The current value of `key` for the transaction being executed.
    fn read(&mut self, key: &V::Key) -> Result<Option<V::Value>, ReadError>;

    /// The value of `key`, a key deferred credits change ([`Vm::settle`]), with
    /// every earlier transaction's credit applied; by default
    /// `Err(ReadError::Credited)`: the view cannot tell (a speculative view must
    /// also make its executor run the batch in order).
    fn read_credited(&mut self, key: &V::Key) -> Result<Option<V::Value>, ReadError> {
        let _ = key;
        Err(ReadError::Credited)
    }
}

/// A blocked execution: the transaction read an ESTIMATE of transaction `.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocked(pub u32);

/// How many writes a write set holds before it allocates (the ledger's operations
/// write at most this many keys).
const INLINE_WRITES: usize = crate::tx::MAX_ACCESS;

/// A transaction's buffered writes, one entry per key, reused across transactions
/// so that execution allocates nothing in the steady state.
#[derive(Clone, Debug)]
pub struct WriteSet<K, V> {
    entries: SmallVec<[(K, V); INLINE_WRITES]>,
}

impl<K, V> Default for WriteSet<K, V> {
    fn default() -> Self {
        WriteSet {
            entries: SmallVec::new(),
        }
    }
}

/// A write refused because the write set already holds its bound of keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteSetFull;

impl<K: PartialEq, V> WriteSet<K, V> {
    /// Forgets every write (keeps the allocation).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Number of keys written.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The writes, in the order their keys were first written.
    pub fn entries(&self) -> &[(K, V)] {
        &self.entries
    }

    /// The value written at `key`, if any.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Writes `value` at `key` (replacing an earlier write of the same key).
    pub fn put(&mut self, key: K, value: V) {
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.entries.push((key, value));
        }
    }

    /// Like `put`, but refuses a new key once `cap` keys are written.
    pub fn put_within(&mut self, key: K, value: V, cap: usize) -> Result<(), WriteSetFull> {
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
            return Ok(());
        }
        if self.entries.len() >= cap {
            return Err(WriteSetFull);
        }
        self.entries.push((key, value));
        Ok(())
    }

    /// Takes the writes out, leaving the set empty.
    pub fn drain(&mut self) -> impl Iterator<Item = (K, V)> + '_ {
        self.entries.drain(..)
    }
}

/// What admission of a batch found (see [`Vm::admit`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Admission {
    /// Signatures verified before execution.
    pub signatures_verified: u64,
    /// Gas charged to (or reserved from) the batch's budget.
    pub gas: u64,
}

/// A virtual machine the schedulers can run (see the module docs).
pub trait Vm: Clone + Send + Sync + 'static {
    /// A state location: the unit of conflict detection.
    type Key: Copy + Eq + Hash + Debug + Send + Sync + 'static;
    /// What a location holds.
    type Value: Clone + PartialEq + Debug + Send + Sync + 'static;
    /// A transaction.
    type Tx: Sync;
    /// What executing a transaction returns.
    type Receipt: Clone + Debug + Send + Sync;
    /// Why admission refused a transaction before it ran.
    type Verdict: Clone + Debug + Send + Sync;
    /// The base state batches are applied to.
    type State: Clone + Send + Sync;
    /// The part of the state one commit call writes (see `finish_batch`).
    type Shard: Send;
    /// Per-thread scratch `execute` may keep between transactions.
    type Scratch: Default + Send;

    /// The hash that places a key in a multi-version shard and a commit shard
    /// (`crate::state::shard_of` of it must be below `crate::state::SHARDS`).
    fn key_hash(key: &Self::Key) -> u64;

    /// The value of `key` in the base state (`None`: absent).
    fn read_state(state: &Self::State, key: &Self::Key) -> Option<Self::Value>;

    /// Writes `value` at `key` in the base state, inside a batch.
    fn write_state(state: &mut Self::State, key: Self::Key, value: Self::Value);

    /// Writes `value` at `key` into the commit shard `shard` (the key's).
    fn write_shard(shard: &mut Self::Shard, key: Self::Key, value: Self::Value);

    /// Ends a batch: `commit(i, shard)` is called once for every commit shard
    /// `i in 0..crate::state::SHARDS` to write what a parallel executor still
    /// holds for it, then the state finishes the batch (on `threads` if given).
    fn finish_batch(
        state: &mut Self::State,
        threads: Option<&WorkerThreads>,
        commit: impl Fn(usize, &mut Self::Shard) + Sync,
    );

    /// The state's digest, settling pending changes (on `threads` if given).
    fn digest(state: &mut Self::State, threads: Option<&WorkerThreads>) -> [u8; 32];

    /// Admission before anything runs: sets `verdicts` to one entry per
    /// transaction (`None`: may run), from the ordered transactions and the
    /// pre-batch state alone.
    fn admit(
        &self,
        state: &Self::State,
        txs: &[Self::Tx],
        threads: Option<&WorkerThreads>,
        verdicts: &mut Vec<Option<Self::Verdict>>,
    ) -> Admission;

    /// Applies `tx` (admission verdict `verdict`) against `view`: on success or a
    /// failure of the transaction's own, its receipt, with `writes` holding what
    /// it writes; `Err(Blocked)` when a read hit a Block-STM ESTIMATE (then
    /// `writes` is empty).
    fn execute<R: ReadView<Self>>(
        &self,
        tx: &Self::Tx,
        verdict: Option<&Self::Verdict>,
        view: &mut R,
        scratch: &mut Self::Scratch,
        writes: &mut WriteSet<Self::Key, Self::Value>,
    ) -> Result<Self::Receipt, Blocked>;

    /// Appends the keys `tx` declares it may read and write to `out` and returns
    /// `true`, or returns `false` if it declares nothing.
    fn declare(tx: &Self::Tx, out: &mut Vec<(Self::Key, Access)>) -> bool;

    /// Calls `hint` on keys `tx` will probably read or write, so that a
    /// scheduler can fetch their places into the cache before execution asks
    /// for them (Block-STM's key table). Only a hint: any keys, in any order,
    /// repeated or not, never change a result; by default none.
    fn hint_keys(tx: &Self::Tx, hint: impl FnMut(&Self::Key)) {
        let _ = (tx, hint);
    }

    /// The receipt of a transaction the executor could not run (never expected).
    fn internal_error(&self) -> Self::Receipt;

    /// Applies to `state` the deferred credits of the transactions whose receipts
    /// these are, in batch order (module docs), once their writes are in the state:
    /// after each transaction in the sequential loop, after `finish_batch` for a
    /// parallel run. By default there are none.
    fn settle(&self, state: &mut Self::State, receipts: &[Self::Receipt]) {
        let _ = (state, receipts);
    }

    /// A state and a batch of independent transactions, for `auto` to measure
    /// the parallel executors' overheads on (`None`: it does not calibrate).
    fn calibration(&self) -> Option<(Self::State, Vec<Self::Tx>)>;
}

/// Reads the base state directly (the sequential executor's view).
pub(crate) struct Direct<'a, V: Vm>(pub(crate) &'a V::State);

impl<V: Vm> ReadView<V> for Direct<'_, V> {
    fn read(&mut self, key: &V::Key) -> Result<Option<V::Value>, ReadError> {
        Ok(V::read_state(self.0, key))
    }

    /// The sequential loop settles each transaction's credits before the next
    /// one runs, so the state holds them.
    fn read_credited(&mut self, key: &V::Key) -> Result<Option<V::Value>, ReadError> {
        Ok(V::read_state(self.0, key))
    }
}
