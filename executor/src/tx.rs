//! Transactions, their declared read/write sets, and receipts.
//!
//! Rules every executor applies identically (the semantics are in `apply.rs`):
//! - **Nonces:** a transaction's nonce must be strictly greater than the sender's
//!   last used nonce (gaps allowed; a fresh account's last nonce is 0, so the first
//!   nonce is at least 1). Replays are rejected, but a client whose transactions are
//!   reordered by the network loses only the ones that arrive after a higher nonce
//!   was used, not every later one.
//! - **Aborts:** a transaction that fails any check is still ordered and gets
//!   `Receipt::Aborted(reason)`. One that fails before it runs (signature, cost
//!   limit, batch budget, bad nonce) writes nothing; one that ran and failed its own
//!   checks writes its nonce and nothing else (`cost.rs` states the rules).
//! - **Signatures:** an account with a registered public key must sign; a signature
//!   from an account without one is rejected. Checked before execution.
//! - **Amounts** are `u128` with checked arithmetic: overflow aborts (`Overflow`).

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::json;
use crate::state::{Account, Key, MarketId, PoolId, Token};

/// The SmallBank checking account is the balance of this token.
pub const CHECKING: Token = 0;
/// The SmallBank savings account is the balance of this token.
pub const SAVINGS: Token = 1;

/// Largest encoded transaction `Transaction::decode` accepts.
pub const MAX_TX_BYTES: usize = 1024;

/// A transaction: who, which nonce, how much extra contract computation, what.
///
/// Serde: in binary formats (bincode) the fields in order; in human-readable ones
/// (JSON) the flat object of the transaction file (`json/transaction.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub sender: Account,
    pub nonce: u64,
    /// Rounds of SHA-256 run during execution, modelling a contract call's cost
    /// (a native transfer costs about a microsecond, a swap contract far more).
    pub work: u32,
    pub op: Op,
    /// Ed25519 signature over `signature::signing_message` (see `signature.rs`).
    pub signature: Option<Signature>,
}

/// The operation a transaction performs. Serde: the variant and its fields in binary
/// formats; `{"op": "transfer", "to": 2, …}` in human-readable ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Move `amount` of `token` from the sender to `to`.
    Transfer {
        to: Account,
        token: Token,
        amount: u128,
    },
    /// Create `amount` of `token` for `to`; only the faucet (account 0) may.
    Mint {
        to: Account,
        token: Token,
        amount: u128,
    },
    /// Sell `amount_in` of `token_in` to `pool` for at least `min_out` of `token_out`.
    Swap {
        pool: PoolId,
        token_in: Token,
        token_out: Token,
        amount_in: u128,
        min_out: u128,
    },
    /// Deposit up to the desired amounts at the pool's price for LP shares.
    AddLiquidity {
        pool: PoolId,
        token_a: Token,
        token_b: Token,
        amount_a: u128,
        amount_b: u128,
        min_liquidity: u128,
    },
    /// Burn LP shares for the pro-rata reserves.
    RemoveLiquidity {
        pool: PoolId,
        token_a: Token,
        token_b: Token,
        liquidity: u128,
        min_a: u128,
        min_b: u128,
    },
    /// Move `amount` of the market's token from the balance into the position.
    Deposit {
        market: MarketId,
        token: Token,
        amount: u128,
    },
    /// Take deposited tokens back, keeping the position healthy.
    Withdraw {
        market: MarketId,
        token: Token,
        amount: u128,
    },
    /// Borrow the market's token against the deposit (collateral factor bound).
    Borrow {
        market: MarketId,
        token: Token,
        amount: u128,
    },
    /// Pay back borrowed tokens.
    Repay {
        market: MarketId,
        token: Token,
        amount: u128,
    },
    /// One of SmallBank's six transaction types, over the sender's checking
    /// (`CHECKING` token) and savings (`SAVINGS` token) balances.
    SmallBank(SmallBankOp),
}

/// SmallBank (Alomari et al., ICDE 2008). Balances are unsigned here: where the
/// original lets a checking account go negative (a `WriteCheck` above the
/// checking balance, with a penalty of 1 when savings do not cover it either),
/// this aborts with `InsufficientBalance`. Serde: as `Op::SmallBank` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmallBankOp {
    /// Read checking + savings (the receipt carries the total).
    Balance,
    /// Add to checking.
    DepositChecking { amount: u128 },
    /// Add to (positive) or take from (negative) savings.
    TransactSavings { amount: i128 },
    /// Move all of the sender's checking and savings into `to`'s checking.
    Amalgamate { to: Account },
    /// Cash a check against checking (reads savings too, as the original does to
    /// decide on its overdraft penalty).
    WriteCheck { amount: u128 },
    /// Move `amount` from the sender's checking to `to`'s checking.
    SendPayment { to: Account, amount: u128 },
}

/// A 64-byte Ed25519 signature. Encodes as 64 raw bytes in binary formats and as
/// a hex string in human-readable ones (JSON, TOML).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({})", to_hex(&self.0))
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Parses hex (either case) into exactly `N` bytes.
pub fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let bytes = s.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = (nibble(bytes[2 * i])? << 4) | nibble(bytes[2 * i + 1])?;
    }
    Some(out)
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&to_hex(&self.0))
        } else {
            use serde::ser::SerializeTuple;
            let mut t = serializer.serialize_tuple(64)?;
            for b in &self.0 {
                t.serialize_element(b)?;
            }
            t.end()
        }
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Signature;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a 64-byte Ed25519 signature (128 hex digits)")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Signature, E> {
                from_hex::<64>(s)
                    .map(Signature)
                    .ok_or_else(|| E::custom("expected 128 hex digits"))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Signature, A::Error> {
                let mut out = [0u8; 64];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(out))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(Visit)
        } else {
            deserializer.deserialize_tuple(64, Visit)
        }
    }
}

/// Why a transaction aborted. Receipts carry it; its serde form is stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbortReason {
    /// Nonce not greater than the sender's last used nonce.
    BadNonce,
    /// The sender has a registered key but the transaction is unsigned.
    MissingSignature,
    /// The signature does not verify (or the sender has no registered key).
    BadSignature,
    /// `mint` from an account other than the faucet.
    NotFaucet,
    ZeroAmount,
    InsufficientBalance,
    /// Checked arithmetic overflowed.
    Overflow,
    UnknownPool,
    /// The tokens named do not match the pool's or market's.
    TokenMismatch,
    /// Empty reserves, or not enough free liquidity in a market.
    InsufficientLiquidity,
    /// A swap that would pay out nothing.
    InsufficientOutput,
    /// Output below the transaction's minimum (swap out, LP minted, amounts burned).
    Slippage,
    InsufficientLiquidityMinted,
    InsufficientLiquidityBurned,
    InsufficientLpBalance,
    UnknownMarket,
    /// A borrow or withdrawal that would break the collateral factor.
    UnderCollateralised,
    /// Withdrawal above the deposit.
    InsufficientDeposit,
    RepayExceedsDebt,
    /// A state entry of the wrong kind, or an executor reading outside the
    /// declared keys. Never expected; present so that no input can cause a panic.
    Internal,
    /// The transaction's cost is above the per-transaction limit (`cost.rs`).
    CostLimit,
    /// The batch's cost budget had no room left for this transaction.
    BatchBudget,
}

impl AbortReason {
    /// Every reason, in declaration order.
    pub const ALL: [AbortReason; 22] = [
        AbortReason::BadNonce,
        AbortReason::MissingSignature,
        AbortReason::BadSignature,
        AbortReason::NotFaucet,
        AbortReason::ZeroAmount,
        AbortReason::InsufficientBalance,
        AbortReason::Overflow,
        AbortReason::UnknownPool,
        AbortReason::TokenMismatch,
        AbortReason::InsufficientLiquidity,
        AbortReason::InsufficientOutput,
        AbortReason::Slippage,
        AbortReason::InsufficientLiquidityMinted,
        AbortReason::InsufficientLiquidityBurned,
        AbortReason::InsufficientLpBalance,
        AbortReason::UnknownMarket,
        AbortReason::UnderCollateralised,
        AbortReason::InsufficientDeposit,
        AbortReason::RepayExceedsDebt,
        AbortReason::Internal,
        AbortReason::CostLimit,
        AbortReason::BatchBudget,
    ];

    /// The snake_case name (same as the serde form).
    pub fn as_str(&self) -> &'static str {
        match self {
            AbortReason::BadNonce => "bad_nonce",
            AbortReason::MissingSignature => "missing_signature",
            AbortReason::BadSignature => "bad_signature",
            AbortReason::NotFaucet => "not_faucet",
            AbortReason::ZeroAmount => "zero_amount",
            AbortReason::InsufficientBalance => "insufficient_balance",
            AbortReason::Overflow => "overflow",
            AbortReason::UnknownPool => "unknown_pool",
            AbortReason::TokenMismatch => "token_mismatch",
            AbortReason::InsufficientLiquidity => "insufficient_liquidity",
            AbortReason::InsufficientOutput => "insufficient_output",
            AbortReason::Slippage => "slippage",
            AbortReason::InsufficientLiquidityMinted => "insufficient_liquidity_minted",
            AbortReason::InsufficientLiquidityBurned => "insufficient_liquidity_burned",
            AbortReason::InsufficientLpBalance => "insufficient_lp_balance",
            AbortReason::UnknownMarket => "unknown_market",
            AbortReason::UnderCollateralised => "under_collateralised",
            AbortReason::InsufficientDeposit => "insufficient_deposit",
            AbortReason::RepayExceedsDebt => "repay_exceeds_debt",
            AbortReason::Internal => "internal",
            AbortReason::CostLimit => "cost_limit",
            AbortReason::BatchBudget => "batch_budget",
        }
    }
}

/// The result of one transaction. Deterministic and small: replicas compare
/// receipts byte for byte. Serde: the variant in binary formats; `{"status": "ok",
/// "amount": "5"}` / `{"status": "aborted", "reason": "slippage"}` in human-readable
/// ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// Applied; nothing to report (transfer, mint, lending, most SmallBank).
    Ok,
    /// Applied; the amount out of a swap, LP shares minted, a SmallBank balance
    /// or amalgamated total.
    Amount(u128),
    /// Applied; the two amounts returned by `remove_liquidity` (token a, token b).
    Amounts(u128, u128),
    /// Not applied; nothing changed.
    Aborted(AbortReason),
}

impl Receipt {
    pub fn is_success(&self) -> bool {
        !matches!(self, Receipt::Aborted(_))
    }

    pub fn abort_reason(&self) -> Option<AbortReason> {
        match self {
            Receipt::Aborted(r) => Some(*r),
            _ => None,
        }
    }
}

// Binary serde forms: serde's remote derives with exactly the types' shapes (the
// bincode encoding replicas carry); the human-readable forms are in json/.

#[derive(Serialize, Deserialize)]
#[serde(remote = "Transaction")]
struct TransactionBinary {
    sender: Account,
    nonce: u64,
    work: u32,
    op: Op,
    signature: Option<Signature>,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Op")]
enum OpBinary {
    Transfer {
        to: Account,
        token: Token,
        amount: u128,
    },
    Mint {
        to: Account,
        token: Token,
        amount: u128,
    },
    Swap {
        pool: PoolId,
        token_in: Token,
        token_out: Token,
        amount_in: u128,
        min_out: u128,
    },
    AddLiquidity {
        pool: PoolId,
        token_a: Token,
        token_b: Token,
        amount_a: u128,
        amount_b: u128,
        min_liquidity: u128,
    },
    RemoveLiquidity {
        pool: PoolId,
        token_a: Token,
        token_b: Token,
        liquidity: u128,
        min_a: u128,
        min_b: u128,
    },
    Deposit {
        market: MarketId,
        token: Token,
        amount: u128,
    },
    Withdraw {
        market: MarketId,
        token: Token,
        amount: u128,
    },
    Borrow {
        market: MarketId,
        token: Token,
        amount: u128,
    },
    Repay {
        market: MarketId,
        token: Token,
        amount: u128,
    },
    SmallBank(#[serde(with = "SmallBankBinary")] SmallBankOp),
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "SmallBankOp")]
enum SmallBankBinary {
    Balance,
    DepositChecking { amount: u128 },
    TransactSavings { amount: i128 },
    Amalgamate { to: Account },
    WriteCheck { amount: u128 },
    SendPayment { to: Account, amount: u128 },
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Receipt")]
enum ReceiptBinary {
    Ok,
    Amount(u128),
    Amounts(u128, u128),
    Aborted(AbortReason),
}

/// Implements `Serialize`/`Deserialize` by format: `$binary` (a remote derive) for
/// binary formats, the `json` module's functions for human-readable ones.
macro_rules! serde_by_format {
    ($ty:ty, $binary:ident, $ser:path, $de:path) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    $ser(self, serializer)
                } else {
                    $binary::serialize(self, serializer)
                }
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    $de(deserializer)
                } else {
                    $binary::deserialize(deserializer)
                }
            }
        }
    };
}

serde_by_format!(
    Transaction,
    TransactionBinary,
    json::serialize_transaction,
    json::deserialize_transaction
);
serde_by_format!(Op, OpBinary, json::serialize_op, json::deserialize_op);
serde_by_format!(
    Receipt,
    ReceiptBinary,
    json::serialize_receipt,
    json::deserialize_receipt
);

impl Serialize for SmallBankOp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            json::serialize_op(&Op::SmallBank(*self), serializer)
        } else {
            SmallBankBinary::serialize(self, serializer)
        }
    }
}

impl<'de> Deserialize<'de> for SmallBankOp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            match json::deserialize_op(deserializer)? {
                Op::SmallBank(sb) => Ok(sb),
                _ => Err(serde::de::Error::custom("expected a SmallBank operation")),
            }
        } else {
            SmallBankBinary::deserialize(deserializer)
        }
    }
}

/// How a transaction uses a key it declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    /// Read and possibly written (every declared write is read first).
    Write,
}

/// Most distinct keys any operation touches.
pub const MAX_ACCESS: usize = 6;

/// The keys a transaction may read and write, computed from its payload alone
/// (no state needed). Execution never touches a key outside this set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessSet {
    keys: [Key; MAX_ACCESS],
    write_mask: u8,
    len: u8,
}

impl AccessSet {
    fn new() -> Self {
        AccessSet {
            keys: [Key::Nonce(0); MAX_ACCESS],
            write_mask: 0,
            len: 0,
        }
    }

    fn add(&mut self, key: Key, access: Access) {
        let i = match self.position(&key) {
            Some(i) => i,
            None => {
                let i = usize::from(self.len);
                // Every operation declares at most MAX_ACCESS - 1 keys.
                if i >= MAX_ACCESS {
                    return;
                }
                self.keys[i] = key;
                self.len += 1;
                i
            }
        };
        if access == Access::Write {
            self.write_mask |= 1 << i;
        }
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The declared keys, in declaration order.
    pub fn keys(&self) -> &[Key] {
        &self.keys[..self.len()]
    }

    /// Whether the `i`-th declared key may be written.
    pub fn is_write(&self, i: usize) -> bool {
        self.write_mask & (1 << i) != 0
    }

    /// Index of `key` among the declared keys.
    pub fn position(&self, key: &Key) -> Option<usize> {
        self.keys().iter().position(|k| k == key)
    }

    /// `(key, access)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (Key, Access)> + '_ {
        self.keys().iter().enumerate().map(|(i, k)| {
            (
                *k,
                if self.is_write(i) {
                    Access::Write
                } else {
                    Access::Read
                },
            )
        })
    }

    /// Keys that may be read (all declared keys: writes are read first).
    pub fn reads(&self) -> impl Iterator<Item = Key> + '_ {
        self.keys().iter().copied()
    }

    /// Keys that may be written.
    pub fn writes(&self) -> impl Iterator<Item = Key> + '_ {
        self.iter()
            .filter(|(_, a)| *a == Access::Write)
            .map(|(k, _)| k)
    }
}

impl Transaction {
    /// An unsigned transaction with no extra work.
    pub fn new(sender: Account, nonce: u64, op: Op) -> Transaction {
        Transaction {
            sender,
            nonce,
            work: 0,
            op,
            signature: None,
        }
    }

    /// Sets the extra contract work (rounds of SHA-256).
    pub fn with_work(mut self, work: u32) -> Transaction {
        self.work = work;
        self
    }

    /// The keys this transaction may read and write, from its payload alone.
    pub fn access_set(&self) -> AccessSet {
        use Access::{Read, Write};
        let s = self.sender;
        let mut set = AccessSet::new();
        set.add(Key::Nonce(s), Write);
        match self.op {
            Op::Transfer { to, token, .. } => {
                set.add(Key::Balance(s, token), Write);
                set.add(Key::Balance(to, token), Write);
            }
            Op::Mint { to, token, .. } => set.add(Key::Balance(to, token), Write),
            Op::Swap {
                pool,
                token_in,
                token_out,
                ..
            } => {
                set.add(Key::Pool(pool), Write);
                set.add(Key::Balance(s, token_in), Write);
                set.add(Key::Balance(s, token_out), Write);
            }
            Op::AddLiquidity {
                pool,
                token_a,
                token_b,
                ..
            }
            | Op::RemoveLiquidity {
                pool,
                token_a,
                token_b,
                ..
            } => {
                set.add(Key::Pool(pool), Write);
                set.add(Key::Balance(s, token_a), Write);
                set.add(Key::Balance(s, token_b), Write);
                set.add(Key::Lp(pool, s), Write);
            }
            Op::Deposit { market, token, .. }
            | Op::Withdraw { market, token, .. }
            | Op::Borrow { market, token, .. }
            | Op::Repay { market, token, .. } => {
                set.add(Key::Market(market), Write);
                set.add(Key::Position(market, s), Write);
                set.add(Key::Balance(s, token), Write);
            }
            Op::SmallBank(sb) => match sb {
                SmallBankOp::Balance => {
                    set.add(Key::Balance(s, CHECKING), Read);
                    set.add(Key::Balance(s, SAVINGS), Read);
                }
                SmallBankOp::DepositChecking { .. } => {
                    set.add(Key::Balance(s, CHECKING), Write);
                }
                SmallBankOp::TransactSavings { .. } => {
                    set.add(Key::Balance(s, SAVINGS), Write);
                }
                SmallBankOp::Amalgamate { to } => {
                    set.add(Key::Balance(s, CHECKING), Write);
                    set.add(Key::Balance(s, SAVINGS), Write);
                    set.add(Key::Balance(to, CHECKING), Write);
                }
                SmallBankOp::WriteCheck { .. } => {
                    set.add(Key::Balance(s, CHECKING), Write);
                    set.add(Key::Balance(s, SAVINGS), Read);
                }
                SmallBankOp::SendPayment { to, .. } => {
                    set.add(Key::Balance(s, CHECKING), Write);
                    set.add(Key::Balance(to, CHECKING), Write);
                }
            },
        }
        set
    }

    /// The bincode encoding replicas carry in request payloads.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        bincode::serde::encode_to_vec(self, bincode::config::standard()).map_err(|e| {
            Error::Encode {
                what: "transaction",
                reason: e.to_string(),
            }
        })
    }

    /// Decodes `Transaction::encode` output: at most `MAX_TX_BYTES`, and the whole
    /// input must be consumed.
    pub fn decode(bytes: &[u8]) -> Result<Transaction, Error> {
        decode_exact(bytes, "transaction")
    }
}

impl Receipt {
    /// The bincode encoding replicas compare and send to clients.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        bincode::serde::encode_to_vec(self, bincode::config::standard()).map_err(|e| {
            Error::Encode {
                what: "receipt",
                reason: e.to_string(),
            }
        })
    }

    pub fn decode(bytes: &[u8]) -> Result<Receipt, Error> {
        decode_exact(bytes, "receipt")
    }
}

fn decode_exact<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, Error> {
    decode_exact_limited::<T, MAX_TX_BYTES>(bytes, what)
}

/// Decodes one bincode value of at most `LIMIT` bytes that must consume all of
/// `bytes`; errors name `what`.
pub(crate) fn decode_exact_limited<T: serde::de::DeserializeOwned, const LIMIT: usize>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, Error> {
    if bytes.len() > LIMIT {
        return Err(Error::Decode {
            what,
            reason: format!("{} bytes is above the {LIMIT}-byte limit", bytes.len()),
        });
    }
    let config = bincode::config::standard().with_limit::<LIMIT>();
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, config).map_err(|e| Error::Decode {
            what,
            reason: e.to_string(),
        })?;
    if used != bytes.len() {
        return Err(Error::Decode {
            what,
            reason: format!("{} trailing bytes", bytes.len() - used),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_is_compact_and_round_trips() {
        let tx = Transaction::new(
            99_999,
            123_456,
            Op::Transfer {
                to: 54_321,
                token: 0,
                amount: 1000,
            },
        )
        .with_work(80);
        let bytes = tx.encode().unwrap();
        assert!(bytes.len() < 24, "{} bytes", bytes.len());
        assert_eq!(Transaction::decode(&bytes).unwrap(), tx);
        let mut signed = tx.clone();
        signed.signature = Some(Signature([0xab; 64]));
        let bytes = signed.encode().unwrap();
        assert!(bytes.len() < 100, "{} bytes", bytes.len());
        assert_eq!(Transaction::decode(&bytes).unwrap(), signed);
    }

    #[test]
    fn decode_rejects_trailing_and_truncated_input() {
        let bytes = Transaction::new(1, 1, Op::SmallBank(SmallBankOp::Balance))
            .encode()
            .unwrap();
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Transaction::decode(&longer).is_err());
        for len in 0..bytes.len() {
            assert!(Transaction::decode(&bytes[..len]).is_err());
        }
        assert!(Transaction::decode(&[0xff; 2000]).is_err());
        // A huge claimed length must be refused, not allocated.
        assert!(
            Transaction::decode(&[
                1, 1, 0, 0, 1, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ])
            .is_err()
        );
    }

    #[test]
    fn receipts_round_trip() {
        for r in [
            Receipt::Ok,
            Receipt::Amount(996),
            Receipt::Amounts(1, u128::MAX),
            Receipt::Aborted(AbortReason::Slippage),
        ] {
            let bytes = r.encode().unwrap();
            assert!(bytes.len() <= 34);
            assert_eq!(Receipt::decode(&bytes).unwrap(), r);
        }
    }

    #[test]
    fn access_sets_dedupe_and_mark_writes() {
        let self_transfer = Transaction::new(
            4,
            1,
            Op::Transfer {
                to: 4,
                token: 0,
                amount: 1,
            },
        );
        let set = self_transfer.access_set();
        assert_eq!(set.keys(), &[Key::Nonce(4), Key::Balance(4, 0)]);
        assert_eq!(set.writes().count(), 2);
        let balance = Transaction::new(4, 1, Op::SmallBank(SmallBankOp::Balance)).access_set();
        assert_eq!(balance.writes().collect::<Vec<_>>(), vec![Key::Nonce(4)]);
        assert_eq!(balance.reads().count(), 3);
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(to_hex(&bytes), "0001abff");
        assert_eq!(from_hex::<4>("0001ABff"), Some(bytes));
        assert_eq!(from_hex::<4>("0001abf"), None);
        assert_eq!(from_hex::<4>("0001abfg"), None);
    }
}
