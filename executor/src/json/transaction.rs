//! The JSON form of transactions, operations and receipts (the README's
//! "Transaction file" and "Output"). A transaction is one flat object:
//! `{"sender": 1, "nonce": 2, "op": "swap", "pool": 0, …, "work": 5, "signature": "…"}`
//! — the common fields, `op` naming the operation, then the operation's fields from
//! [`OPS`]. Ids, nonces and `work` are written as JSON numbers, amounts as decimal
//! strings; both forms are read for every integer.

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;

use super::object::{Fields, Located, RawObject};
use crate::tx::{AbortReason, Op, Receipt, Signature, SmallBankOp, Transaction, to_hex};

/// How an operation field is written and its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// An account id (`u64`), a JSON number.
    Account,
    /// A token, pool or market id (`u32`), a JSON number.
    Id,
    /// A `u128` amount, a decimal string.
    Amount,
    /// A `u128` minimum that defaults to 0 when absent.
    Minimum,
    /// An `i128` amount, a decimal string.
    Signed,
}

use Kind::{Account, Amount, Id, Minimum, Signed};

/// The operations by name and their fields in order (besides the common `sender`,
/// `nonce`, `op`, `work`, `signature`).
const OPS: &[(&str, &[(&str, Kind)])] = &[
    (
        "transfer",
        &[("to", Account), ("token", Id), ("amount", Amount)],
    ),
    (
        "mint",
        &[("to", Account), ("token", Id), ("amount", Amount)],
    ),
    (
        "swap",
        &[
            ("pool", Id),
            ("token_in", Id),
            ("token_out", Id),
            ("amount_in", Amount),
            ("min_out", Minimum),
        ],
    ),
    (
        "add_liquidity",
        &[
            ("pool", Id),
            ("token_a", Id),
            ("token_b", Id),
            ("amount_a", Amount),
            ("amount_b", Amount),
            ("min_liquidity", Minimum),
        ],
    ),
    (
        "remove_liquidity",
        &[
            ("pool", Id),
            ("token_a", Id),
            ("token_b", Id),
            ("liquidity", Amount),
            ("min_a", Minimum),
            ("min_b", Minimum),
        ],
    ),
    (
        "deposit",
        &[("market", Id), ("token", Id), ("amount", Amount)],
    ),
    (
        "withdraw",
        &[("market", Id), ("token", Id), ("amount", Amount)],
    ),
    (
        "borrow",
        &[("market", Id), ("token", Id), ("amount", Amount)],
    ),
    (
        "repay",
        &[("market", Id), ("token", Id), ("amount", Amount)],
    ),
    ("balance", &[]),
    ("deposit_checking", &[("amount", Amount)]),
    ("transact_savings", &[("amount", Signed)]),
    ("amalgamate", &[("to", Account)]),
    ("write_check", &[("amount", Amount)]),
    ("send_payment", &[("to", Account), ("amount", Amount)]),
];

const COMMON: [&str; 5] = ["sender", "nonce", "op", "work", "signature"];

/// One operation field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Int {
    U(u128),
    I(i128),
}

pub(super) fn is_op_name(name: &str) -> bool {
    OPS.iter().any(|(n, _)| *n == name)
}

fn op_fields(name: &str) -> Option<&'static [(&'static str, Kind)]> {
    OPS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The operation's name and field values in `OPS` order.
fn parts(op: &Op) -> (&'static str, Vec<Int>) {
    use Int::U;
    let id = |x: u32| U(u128::from(x));
    let account = |x: u64| U(u128::from(x));
    match *op {
        Op::Transfer { to, token, amount } => ("transfer", vec![account(to), id(token), U(amount)]),
        Op::Mint { to, token, amount } => ("mint", vec![account(to), id(token), U(amount)]),
        Op::Swap {
            pool,
            token_in,
            token_out,
            amount_in,
            min_out,
        } => (
            "swap",
            vec![
                id(pool),
                id(token_in),
                id(token_out),
                U(amount_in),
                U(min_out),
            ],
        ),
        Op::AddLiquidity {
            pool,
            token_a,
            token_b,
            amount_a,
            amount_b,
            min_liquidity,
        } => (
            "add_liquidity",
            vec![
                id(pool),
                id(token_a),
                id(token_b),
                U(amount_a),
                U(amount_b),
                U(min_liquidity),
            ],
        ),
        Op::RemoveLiquidity {
            pool,
            token_a,
            token_b,
            liquidity,
            min_a,
            min_b,
        } => (
            "remove_liquidity",
            vec![
                id(pool),
                id(token_a),
                id(token_b),
                U(liquidity),
                U(min_a),
                U(min_b),
            ],
        ),
        Op::Deposit {
            market,
            token,
            amount,
        } => ("deposit", vec![id(market), id(token), U(amount)]),
        Op::Withdraw {
            market,
            token,
            amount,
        } => ("withdraw", vec![id(market), id(token), U(amount)]),
        Op::Borrow {
            market,
            token,
            amount,
        } => ("borrow", vec![id(market), id(token), U(amount)]),
        Op::Repay {
            market,
            token,
            amount,
        } => ("repay", vec![id(market), id(token), U(amount)]),
        Op::SmallBank(sb) => match sb {
            SmallBankOp::Balance => ("balance", vec![]),
            SmallBankOp::DepositChecking { amount } => ("deposit_checking", vec![U(amount)]),
            SmallBankOp::TransactSavings { amount } => ("transact_savings", vec![Int::I(amount)]),
            SmallBankOp::Amalgamate { to } => ("amalgamate", vec![account(to)]),
            SmallBankOp::WriteCheck { amount } => ("write_check", vec![U(amount)]),
            SmallBankOp::SendPayment { to, amount } => {
                ("send_payment", vec![account(to), U(amount)])
            }
        },
    }
}

/// The operation called `name` from its field values in `OPS` order (each already
/// range-checked for its kind, so the narrowing casts are exact).
fn build(name: &str, v: &[Int]) -> Option<Op> {
    let u = |i: usize| match v.get(i) {
        Some(Int::U(x)) => Some(*x),
        _ => None,
    };
    let id = |i: usize| u(i).map(|x| x as u32);
    let account = |i: usize| u(i).map(|x| x as u64);
    Some(match name {
        "transfer" => Op::Transfer {
            to: account(0)?,
            token: id(1)?,
            amount: u(2)?,
        },
        "mint" => Op::Mint {
            to: account(0)?,
            token: id(1)?,
            amount: u(2)?,
        },
        "swap" => Op::Swap {
            pool: id(0)?,
            token_in: id(1)?,
            token_out: id(2)?,
            amount_in: u(3)?,
            min_out: u(4)?,
        },
        "add_liquidity" => Op::AddLiquidity {
            pool: id(0)?,
            token_a: id(1)?,
            token_b: id(2)?,
            amount_a: u(3)?,
            amount_b: u(4)?,
            min_liquidity: u(5)?,
        },
        "remove_liquidity" => Op::RemoveLiquidity {
            pool: id(0)?,
            token_a: id(1)?,
            token_b: id(2)?,
            liquidity: u(3)?,
            min_a: u(4)?,
            min_b: u(5)?,
        },
        "deposit" => Op::Deposit {
            market: id(0)?,
            token: id(1)?,
            amount: u(2)?,
        },
        "withdraw" => Op::Withdraw {
            market: id(0)?,
            token: id(1)?,
            amount: u(2)?,
        },
        "borrow" => Op::Borrow {
            market: id(0)?,
            token: id(1)?,
            amount: u(2)?,
        },
        "repay" => Op::Repay {
            market: id(0)?,
            token: id(1)?,
            amount: u(2)?,
        },
        "balance" => Op::SmallBank(SmallBankOp::Balance),
        "deposit_checking" => Op::SmallBank(SmallBankOp::DepositChecking { amount: u(0)? }),
        "transact_savings" => match v.first() {
            Some(Int::I(amount)) => Op::SmallBank(SmallBankOp::TransactSavings { amount: *amount }),
            _ => return None,
        },
        "amalgamate" => Op::SmallBank(SmallBankOp::Amalgamate { to: account(0)? }),
        "write_check" => Op::SmallBank(SmallBankOp::WriteCheck { amount: u(0)? }),
        "send_payment" => Op::SmallBank(SmallBankOp::SendPayment {
            to: account(0)?,
            amount: u(1)?,
        }),
        _ => return None,
    })
}

/// Reads the operation named by `op` and its fields; `common` lists the other keys
/// the object may hold.
fn op_from_fields(f: &Fields<'_>, common: &[&str]) -> Result<Op, Located> {
    let name = f.string("op")?;
    let Some(fields) = op_fields(&name) else {
        let names: Vec<&str> = OPS.iter().map(|(n, _)| *n).collect();
        return Err(f.located(
            "op",
            format!(
                "unknown operation `{name}` (expected one of: {})",
                names.join(", ")
            ),
        ));
    };
    let allowed: Vec<&str> = common
        .iter()
        .copied()
        .chain(fields.iter().map(|(n, _)| *n))
        .collect();
    f.only(&allowed)?;
    let values = fields
        .iter()
        .map(|&(field, kind)| {
            Ok(match kind {
                Account => Int::U(f.unsigned(field, u128::from(u64::MAX))?),
                Id => Int::U(f.unsigned(field, u128::from(u32::MAX))?),
                Amount => Int::U(f.unsigned(field, u128::MAX)?),
                Minimum => Int::U(f.unsigned_or(field, u128::MAX, 0)?),
                Signed => Int::I(f.signed(field)?),
            })
        })
        .collect::<Result<Vec<Int>, Located>>()?;
    build(&name, &values)
        .ok_or_else(|| Located::new(format!("operation `{name}`: internal field mismatch")))
}

/// Reads a transaction object (see the module docs).
pub(super) fn transaction_from_fields(f: &Fields<'_>) -> Result<Transaction, Located> {
    let op = op_from_fields(f, &COMMON)?;
    let signature = if f.has("signature") {
        Some(Signature(
            f.hex::<64>("signature", "a 64-byte Ed25519 signature")?,
        ))
    } else {
        None
    };
    Ok(Transaction {
        sender: f.u64("sender")?,
        nonce: f.u64("nonce")?,
        work: f.unsigned_or("work", u128::from(u32::MAX), 0)? as u32,
        op,
        signature,
    })
}

/// Writes `"op"` and the operation's fields into an open map.
fn write_op<M: SerializeMap>(op: &Op, map: &mut M) -> Result<(), M::Error> {
    let (name, values) = parts(op);
    map.serialize_entry("op", name)?;
    for (&(field, kind), value) in op_fields(name).unwrap_or(&[]).iter().zip(values) {
        match (kind, value) {
            (Account | Id, Int::U(x)) => map.serialize_entry(field, &(x as u64))?,
            (_, Int::U(x)) => map.serialize_entry(field, &x.to_string())?,
            (_, Int::I(x)) => map.serialize_entry(field, &x.to_string())?,
        }
    }
    Ok(())
}

/// Human-readable `Serialize` for `Op`: `{"op": "transfer", "to": 2, …}`.
pub(crate) fn serialize_op<S: Serializer>(op: &Op, serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(None)?;
    write_op(op, &mut map)?;
    map.end()
}

/// Human-readable `Deserialize` for `Op`.
pub(crate) fn deserialize_op<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Op, D::Error> {
    let object = RawObject::<Box<RawValue>>::deserialize(deserializer)?;
    op_from_fields(&Fields::new(&object), &["op"]).map_err(D::Error::custom)
}

/// Human-readable `Serialize` for `Transaction` (the transaction file's entries).
pub(crate) fn serialize_transaction<S: Serializer>(
    tx: &Transaction,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(None)?;
    map.serialize_entry("sender", &tx.sender)?;
    map.serialize_entry("nonce", &tx.nonce)?;
    write_op(&tx.op, &mut map)?;
    if tx.work != 0 {
        map.serialize_entry("work", &tx.work)?;
    }
    if let Some(sig) = &tx.signature {
        map.serialize_entry("signature", &to_hex(&sig.0))?;
    }
    map.end()
}

/// Human-readable `Deserialize` for `Transaction`.
pub(crate) fn deserialize_transaction<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Transaction, D::Error> {
    let object = RawObject::<Box<RawValue>>::deserialize(deserializer)?;
    transaction_from_fields(&Fields::new(&object)).map_err(D::Error::custom)
}

/// Human-readable `Serialize` for `Receipt`: `{"status": "ok"}`, with `"amount"`
/// or `"amounts"` (decimal strings), or `{"status": "aborted", "reason": "…"}`.
pub(crate) fn serialize_receipt<S: Serializer>(
    receipt: &Receipt,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(None)?;
    match receipt {
        Receipt::Ok => map.serialize_entry("status", "ok")?,
        Receipt::Amount(a) => {
            map.serialize_entry("status", "ok")?;
            map.serialize_entry("amount", &a.to_string())?;
        }
        Receipt::Amounts(a, b) => {
            map.serialize_entry("status", "ok")?;
            map.serialize_entry("amounts", &[a.to_string(), b.to_string()])?;
        }
        Receipt::Aborted(reason) => {
            map.serialize_entry("status", "aborted")?;
            map.serialize_entry("reason", reason.as_str())?;
        }
    }
    map.end()
}

/// Human-readable `Deserialize` for `Receipt` (the form `serialize_receipt` writes).
pub(crate) fn deserialize_receipt<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Receipt, D::Error> {
    let object = RawObject::<Box<RawValue>>::deserialize(deserializer)?;
    let f = Fields::new(&object);
    let receipt = (|| -> Result<Receipt, Located> {
        match f.string("status")?.as_str() {
            "ok" if f.has("amounts") => {
                f.only(&["status", "amounts"])?;
                let raw = f.raw("amounts")?;
                let pair: [Box<RawValue>; 2] = serde_json::from_str(raw.get())
                    .map_err(|_| f.located("amounts", "expected two amounts"))?;
                let amount = |r: &RawValue| {
                    super::integer::unsigned(r, u128::MAX).map_err(|m| f.located("amounts", m))
                };
                Ok(Receipt::Amounts(amount(&pair[0])?, amount(&pair[1])?))
            }
            "ok" if f.has("amount") => {
                f.only(&["status", "amount"])?;
                Ok(Receipt::Amount(f.unsigned("amount", u128::MAX)?))
            }
            "ok" => {
                f.only(&["status"])?;
                Ok(Receipt::Ok)
            }
            "aborted" => {
                f.only(&["status", "reason"])?;
                let reason = f.string("reason")?;
                AbortReason::ALL
                    .iter()
                    .find(|r| r.as_str() == reason)
                    .map(|r| Receipt::Aborted(*r))
                    .ok_or_else(|| f.located("reason", format!("unknown abort reason `{reason}`")))
            }
            other => Err(f.located(
                "status",
                format!("expected `ok` or `aborted`, got `{other}`"),
            )),
        }
    })();
    receipt.map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{WorkloadKind, WorkloadSpec};

    #[test]
    fn every_operation_round_trips_and_matches_the_table() {
        let spec = WorkloadSpec {
            kind: WorkloadKind::Mixed,
            accounts: 50,
            signed: true,
            work: 3,
            ..WorkloadSpec::default()
        };
        let mut txs = spec.generator(0, 1).unwrap().batch(400);
        txs.push(Transaction::new(
            1,
            u64::MAX,
            Op::SmallBank(SmallBankOp::TransactSavings { amount: i128::MIN }),
        ));
        txs.push(Transaction::new(
            0,
            1,
            Op::Mint {
                to: u64::MAX,
                token: u32::MAX,
                amount: u128::MAX,
            },
        ));
        let text = serde_json::to_string(&txs).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<Transaction>>(&text).unwrap(),
            txs
        );
        assert_eq!(
            super::super::read_transactions("t.json", &text).unwrap(),
            txs
        );
        for tx in &txs {
            let (name, values) = parts(&tx.op);
            assert_eq!(op_fields(name).unwrap().len(), values.len(), "{name}");
            assert_eq!(build(name, &values), Some(tx.op));
            let op_text = serde_json::to_string(&tx.op).unwrap();
            assert_eq!(serde_json::from_str::<Op>(&op_text).unwrap(), tx.op);
        }
    }

    #[test]
    fn receipts_round_trip_through_json() {
        for r in [
            Receipt::Ok,
            Receipt::Amount(u128::MAX),
            Receipt::Amounts(1, 2),
            Receipt::Aborted(AbortReason::Slippage),
        ] {
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Receipt>(&text).unwrap(), r, "{text}");
        }
        assert_eq!(
            serde_json::to_string(&Receipt::Amounts(1, 2)).unwrap(),
            r#"{"status":"ok","amounts":["1","2"]}"#
        );
        assert!(serde_json::from_str::<Receipt>(r#"{"status":"ok","status":"aborted"}"#).is_err());
    }
}
