//! The JSON file formats of `tandem exec`: the genesis file (a workload spec or
//! explicit entries), the transaction file, and the receipts it prints. The formats
//! are documented in the README's "Executors" section.
//!
//! Parsing is field by field so that every error names the file, the entry and
//! the field: `txs.json: entry 3 (swap): field `amount_in`: expected an unsigned
//! integer (a JSON number or a decimal string), got "12x"`.
//! Integers may be JSON numbers or decimal strings (for amounts above 2^53, which
//! many JSON readers round); printed amounts are always decimal strings.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value as Json, json};
use tandem_executor::{
    Key, Op, Receipt, Signature, SmallBankOp, State, Transaction, Value, WorkloadSpec, amm::Pool,
    from_hex, lending::Market, lending::Position, to_hex,
};

/// One JSON object being read, with the location to put in errors.
struct Fields<'a> {
    obj: &'a Map<String, Json>,
    place: String,
}

impl<'a> Fields<'a> {
    fn new(value: &'a Json, place: String) -> Result<Fields<'a>> {
        match value {
            Json::Object(obj) => Ok(Fields { obj, place }),
            other => bail!("{place}: expected a JSON object, got {}", kind_of(other)),
        }
    }

    fn fail(&self, field: &str, problem: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("{}: field `{field}`: {problem}", self.place)
    }

    /// Rejects fields outside `allowed`.
    fn only(&self, allowed: &[&str]) -> Result<()> {
        for name in self.obj.keys() {
            if !allowed.contains(&name.as_str()) {
                return Err(anyhow!(
                    "{}: unknown field `{name}` (expected: {})",
                    self.place,
                    allowed.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn raw(&self, field: &str) -> Result<&'a Json> {
        self.obj
            .get(field)
            .ok_or_else(|| self.fail(field, "missing"))
    }

    fn unsigned(&self, field: &str, max: u128) -> Result<u128> {
        let v = self.raw(field)?;
        let parsed = match v {
            Json::Number(n) => n.as_u64().map(u128::from),
            Json::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse::<u128>().ok()
            }
            _ => None,
        };
        match parsed {
            Some(x) if x <= max => Ok(x),
            Some(x) => Err(self.fail(field, format!("{x} is above the maximum {max}"))),
            None => Err(self.fail(
                field,
                format!(
                    "expected an unsigned integer (a JSON number or a decimal string), got {}",
                    short(v)
                ),
            )),
        }
    }

    fn u128(&self, field: &str) -> Result<u128> {
        self.unsigned(field, u128::MAX)
    }

    fn u64(&self, field: &str) -> Result<u64> {
        Ok(self.unsigned(field, u128::from(u64::MAX))? as u64)
    }

    fn u32(&self, field: &str) -> Result<u32> {
        Ok(self.unsigned(field, u128::from(u32::MAX))? as u32)
    }

    fn u16(&self, field: &str) -> Result<u16> {
        Ok(self.unsigned(field, u128::from(u16::MAX))? as u16)
    }

    fn i128(&self, field: &str) -> Result<i128> {
        let v = self.raw(field)?;
        let parsed = match v {
            Json::Number(n) => n.as_i64().map(i128::from),
            Json::String(s) => s.parse::<i128>().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| {
            self.fail(
                field,
                format!(
                    "expected an integer (a JSON number or a decimal string), got {}",
                    short(v)
                ),
            )
        })
    }

    fn u128_or(&self, field: &str, default: u128) -> Result<u128> {
        if self.obj.contains_key(field) {
            self.u128(field)
        } else {
            Ok(default)
        }
    }

    fn string(&self, field: &str) -> Result<&'a str> {
        match self.raw(field)? {
            Json::String(s) => Ok(s),
            other => Err(self.fail(field, format!("expected a string, got {}", short(other)))),
        }
    }
}

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn short(v: &Json) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}…", &s[..s.floor_char_boundary(40)])
    } else {
        s
    }
}

/// The operations by name, with the fields each takes (besides the common
/// `sender`, `nonce`, `op`, `work`, `signature`).
pub const OPS: &[(&str, &[&str])] = &[
    ("transfer", &["to", "token", "amount"]),
    ("mint", &["to", "token", "amount"]),
    (
        "swap",
        &["pool", "token_in", "token_out", "amount_in", "min_out"],
    ),
    (
        "add_liquidity",
        &[
            "pool",
            "token_a",
            "token_b",
            "amount_a",
            "amount_b",
            "min_liquidity",
        ],
    ),
    (
        "remove_liquidity",
        &["pool", "token_a", "token_b", "liquidity", "min_a", "min_b"],
    ),
    ("deposit", &["market", "token", "amount"]),
    ("withdraw", &["market", "token", "amount"]),
    ("borrow", &["market", "token", "amount"]),
    ("repay", &["market", "token", "amount"]),
    ("balance", &[]),
    ("deposit_checking", &["amount"]),
    ("transact_savings", &["amount"]),
    ("amalgamate", &["to"]),
    ("write_check", &["amount"]),
    ("send_payment", &["to", "amount"]),
];

const COMMON: [&str; 5] = ["sender", "nonce", "op", "work", "signature"];

fn parse_tx(f: &Fields<'_>) -> Result<Transaction> {
    let op_name = f.string("op")?;
    let Some((_, op_fields)) = OPS.iter().find(|(n, _)| *n == op_name) else {
        let names: Vec<&str> = OPS.iter().map(|(n, _)| *n).collect();
        return Err(f.fail(
            "op",
            format!(
                "unknown operation `{op_name}` (expected one of: {})",
                names.join(", ")
            ),
        ));
    };
    let f = Fields {
        obj: f.obj,
        place: format!("{} ({op_name})", f.place),
    };
    let allowed: Vec<&str> = COMMON.iter().chain(op_fields.iter()).copied().collect();
    f.only(&allowed)?;
    let sender = f.u64("sender")?;
    let nonce = f.u64("nonce")?;
    let work = if f.obj.contains_key("work") {
        f.u32("work")?
    } else {
        0
    };
    let op = match op_name {
        "transfer" => Op::Transfer {
            to: f.u64("to")?,
            token: f.u32("token")?,
            amount: f.u128("amount")?,
        },
        "mint" => Op::Mint {
            to: f.u64("to")?,
            token: f.u32("token")?,
            amount: f.u128("amount")?,
        },
        "swap" => Op::Swap {
            pool: f.u32("pool")?,
            token_in: f.u32("token_in")?,
            token_out: f.u32("token_out")?,
            amount_in: f.u128("amount_in")?,
            min_out: f.u128_or("min_out", 0)?,
        },
        "add_liquidity" => Op::AddLiquidity {
            pool: f.u32("pool")?,
            token_a: f.u32("token_a")?,
            token_b: f.u32("token_b")?,
            amount_a: f.u128("amount_a")?,
            amount_b: f.u128("amount_b")?,
            min_liquidity: f.u128_or("min_liquidity", 0)?,
        },
        "remove_liquidity" => Op::RemoveLiquidity {
            pool: f.u32("pool")?,
            token_a: f.u32("token_a")?,
            token_b: f.u32("token_b")?,
            liquidity: f.u128("liquidity")?,
            min_a: f.u128_or("min_a", 0)?,
            min_b: f.u128_or("min_b", 0)?,
        },
        "deposit" | "withdraw" | "borrow" | "repay" => {
            let (market, token, amount) = (f.u32("market")?, f.u32("token")?, f.u128("amount")?);
            match op_name {
                "deposit" => Op::Deposit {
                    market,
                    token,
                    amount,
                },
                "withdraw" => Op::Withdraw {
                    market,
                    token,
                    amount,
                },
                "borrow" => Op::Borrow {
                    market,
                    token,
                    amount,
                },
                _ => Op::Repay {
                    market,
                    token,
                    amount,
                },
            }
        }
        "balance" => Op::SmallBank(SmallBankOp::Balance),
        "deposit_checking" => Op::SmallBank(SmallBankOp::DepositChecking {
            amount: f.u128("amount")?,
        }),
        "transact_savings" => Op::SmallBank(SmallBankOp::TransactSavings {
            amount: f.i128("amount")?,
        }),
        "amalgamate" => Op::SmallBank(SmallBankOp::Amalgamate { to: f.u64("to")? }),
        "write_check" => Op::SmallBank(SmallBankOp::WriteCheck {
            amount: f.u128("amount")?,
        }),
        _ => Op::SmallBank(SmallBankOp::SendPayment {
            to: f.u64("to")?,
            amount: f.u128("amount")?,
        }),
    };
    let signature = if f.obj.contains_key("signature") {
        let hex = f.string("signature")?;
        Some(Signature(from_hex::<64>(hex).ok_or_else(|| {
            f.fail(
                "signature",
                "expected 128 hex digits (a 64-byte Ed25519 signature)",
            )
        })?))
    } else {
        None
    };
    Ok(Transaction {
        sender,
        nonce,
        work,
        op,
        signature,
    })
}

/// Parses a transaction file: a JSON array of transaction objects.
pub fn parse_transactions(file: &str, text: &str) -> Result<Vec<Transaction>> {
    let json: Json =
        serde_json::from_str(text).with_context(|| format!("{file}: not valid JSON"))?;
    let Json::Array(entries) = json else {
        bail!(
            "{file}: expected a JSON array of transactions, got {}",
            kind_of(&json)
        );
    };
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| parse_tx(&Fields::new(entry, format!("{file}: entry {i}"))?))
        .collect()
}

/// Renders a transaction in the file format (used to write example files).
pub fn transaction_json(tx: &Transaction) -> Json {
    let mut m = Map::new();
    m.insert("sender".into(), json!(tx.sender));
    m.insert("nonce".into(), json!(tx.nonce));
    let amount = |x: u128| Json::String(x.to_string());
    let (name, fields): (&str, Vec<(&str, Json)>) = match tx.op {
        Op::Transfer {
            to,
            token,
            amount: a,
        } => (
            "transfer",
            vec![
                ("to", json!(to)),
                ("token", json!(token)),
                ("amount", amount(a)),
            ],
        ),
        Op::Mint {
            to,
            token,
            amount: a,
        } => (
            "mint",
            vec![
                ("to", json!(to)),
                ("token", json!(token)),
                ("amount", amount(a)),
            ],
        ),
        Op::Swap {
            pool,
            token_in,
            token_out,
            amount_in,
            min_out,
        } => (
            "swap",
            vec![
                ("pool", json!(pool)),
                ("token_in", json!(token_in)),
                ("token_out", json!(token_out)),
                ("amount_in", amount(amount_in)),
                ("min_out", amount(min_out)),
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
                ("pool", json!(pool)),
                ("token_a", json!(token_a)),
                ("token_b", json!(token_b)),
                ("amount_a", amount(amount_a)),
                ("amount_b", amount(amount_b)),
                ("min_liquidity", amount(min_liquidity)),
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
                ("pool", json!(pool)),
                ("token_a", json!(token_a)),
                ("token_b", json!(token_b)),
                ("liquidity", amount(liquidity)),
                ("min_a", amount(min_a)),
                ("min_b", amount(min_b)),
            ],
        ),
        Op::Deposit {
            market,
            token,
            amount: a,
        }
        | Op::Withdraw {
            market,
            token,
            amount: a,
        }
        | Op::Borrow {
            market,
            token,
            amount: a,
        }
        | Op::Repay {
            market,
            token,
            amount: a,
        } => (
            match tx.op {
                Op::Deposit { .. } => "deposit",
                Op::Withdraw { .. } => "withdraw",
                Op::Borrow { .. } => "borrow",
                _ => "repay",
            },
            vec![
                ("market", json!(market)),
                ("token", json!(token)),
                ("amount", amount(a)),
            ],
        ),
        Op::SmallBank(sb) => match sb {
            SmallBankOp::Balance => ("balance", vec![]),
            SmallBankOp::DepositChecking { amount: a } => {
                ("deposit_checking", vec![("amount", amount(a))])
            }
            SmallBankOp::TransactSavings { amount: a } => (
                "transact_savings",
                vec![("amount", Json::String(a.to_string()))],
            ),
            SmallBankOp::Amalgamate { to } => ("amalgamate", vec![("to", json!(to))]),
            SmallBankOp::WriteCheck { amount: a } => ("write_check", vec![("amount", amount(a))]),
            SmallBankOp::SendPayment { to, amount: a } => (
                "send_payment",
                vec![("to", json!(to)), ("amount", amount(a))],
            ),
        },
    };
    m.insert("op".into(), json!(name));
    for (k, v) in fields {
        m.insert(k.into(), v);
    }
    if tx.work != 0 {
        m.insert("work".into(), json!(tx.work));
    }
    if let Some(sig) = &tx.signature {
        m.insert("signature".into(), json!(to_hex(&sig.0)));
    }
    Json::Object(m)
}

const GENESIS_SECTIONS: [&str; 8] = [
    "workload",
    "balances",
    "nonces",
    "pools",
    "lp",
    "markets",
    "positions",
    "public_keys",
];

/// Parses a genesis file: `{"workload": {...spec...}}` or explicit sections.
pub fn parse_genesis(file: &str, text: &str) -> Result<State> {
    let json: Json =
        serde_json::from_str(text).with_context(|| format!("{file}: not valid JSON"))?;
    let top = Fields::new(&json, file.to_string())?;
    top.only(&GENESIS_SECTIONS)?;
    if let Some(spec) = top.obj.get("workload") {
        if top.obj.len() > 1 {
            bail!("{file}: `workload` cannot be combined with explicit sections");
        }
        let spec: WorkloadSpec = serde_json::from_value(spec.clone())
            .with_context(|| format!("{file}: field `workload`"))?;
        return spec
            .genesis()
            .with_context(|| format!("{file}: field `workload`"));
    }
    let mut entries: Vec<(Key, Value)> = Vec::new();
    let section = |name: &str| -> Result<Vec<Fields<'_>>> {
        match top.obj.get(name) {
            None => Ok(Vec::new()),
            Some(Json::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| Fields::new(item, format!("{file}: {name}[{i}]")))
                .collect(),
            Some(other) => bail!("{file}: `{name}` must be an array, got {}", kind_of(other)),
        }
    };
    for f in section("balances")? {
        f.only(&["account", "token", "amount"])?;
        entries.push((
            Key::Balance(f.u64("account")?, f.u32("token")?),
            Value::Amount(f.u128("amount")?),
        ));
    }
    for f in section("nonces")? {
        f.only(&["account", "nonce"])?;
        entries.push((Key::Nonce(f.u64("account")?), Value::Nonce(f.u64("nonce")?)));
    }
    for f in section("pools")? {
        f.only(&[
            "pool",
            "token0",
            "token1",
            "reserve0",
            "reserve1",
            "lp_supply",
        ])?;
        entries.push((
            Key::Pool(f.u32("pool")?),
            Value::Pool(Pool {
                token0: f.u32("token0")?,
                token1: f.u32("token1")?,
                reserve0: f.u128_or("reserve0", 0)?,
                reserve1: f.u128_or("reserve1", 0)?,
                lp_supply: f.u128_or("lp_supply", 0)?,
            }),
        ));
    }
    for f in section("lp")? {
        f.only(&["pool", "account", "amount"])?;
        entries.push((
            Key::Lp(f.u32("pool")?, f.u64("account")?),
            Value::Amount(f.u128("amount")?),
        ));
    }
    for f in section("markets")? {
        f.only(&[
            "market",
            "token",
            "collateral_factor_bps",
            "total_deposits",
            "total_borrows",
        ])?;
        entries.push((
            Key::Market(f.u32("market")?),
            Value::Market(Market {
                token: f.u32("token")?,
                collateral_factor_bps: f.u16("collateral_factor_bps")?,
                total_deposits: f.u128_or("total_deposits", 0)?,
                total_borrows: f.u128_or("total_borrows", 0)?,
            }),
        ));
    }
    for f in section("positions")? {
        f.only(&["market", "account", "deposit", "borrow"])?;
        entries.push((
            Key::Position(f.u32("market")?, f.u64("account")?),
            Value::Position(Position {
                deposit: f.u128_or("deposit", 0)?,
                borrow: f.u128_or("borrow", 0)?,
            }),
        ));
    }
    for f in section("public_keys")? {
        f.only(&["account", "key"])?;
        let key = from_hex::<32>(f.string("key")?)
            .ok_or_else(|| f.fail("key", "expected 64 hex digits (an Ed25519 public key)"))?;
        entries.push((Key::PublicKey(f.u64("account")?), Value::PublicKey(key)));
    }
    State::from_entries(entries).with_context(|| format!("{file}: invalid genesis"))
}

/// A receipt as printed by `tandem exec`.
pub fn receipt_json(index: usize, receipt: &Receipt) -> Json {
    match receipt {
        Receipt::Ok => json!({"index": index, "status": "ok"}),
        Receipt::Amount(a) => json!({"index": index, "status": "ok", "amount": a.to_string()}),
        Receipt::Amounts(a, b) => {
            json!({"index": index, "status": "ok", "amounts": [a.to_string(), b.to_string()]})
        }
        Receipt::Aborted(reason) => {
            json!({"index": index, "status": "aborted", "reason": reason.as_str()})
        }
    }
}

/// A state entry as printed by `tandem exec --dump-state` (same shapes as the
/// explicit genesis sections, tagged with the section name).
pub fn entry_json(key: &Key, value: &Value) -> Json {
    match (key, value) {
        (Key::Balance(a, t), Value::Amount(x)) => {
            json!({"balances": {"account": a, "token": t, "amount": x.to_string()}})
        }
        (Key::Nonce(a), Value::Nonce(n)) => json!({"nonces": {"account": a, "nonce": n}}),
        (Key::Pool(p), Value::Pool(pool)) => json!({"pools": {
            "pool": p, "token0": pool.token0, "token1": pool.token1,
            "reserve0": pool.reserve0.to_string(), "reserve1": pool.reserve1.to_string(),
            "lp_supply": pool.lp_supply.to_string()}}),
        (Key::Lp(p, a), Value::Amount(x)) => {
            json!({"lp": {"pool": p, "account": a, "amount": x.to_string()}})
        }
        (Key::Market(m), Value::Market(mk)) => json!({"markets": {
            "market": m, "token": mk.token, "collateral_factor_bps": mk.collateral_factor_bps,
            "total_deposits": mk.total_deposits.to_string(),
            "total_borrows": mk.total_borrows.to_string()}}),
        (Key::Position(m, a), Value::Position(p)) => json!({"positions": {
            "market": m, "account": a, "deposit": p.deposit.to_string(),
            "borrow": p.borrow.to_string()}}),
        (Key::PublicKey(a), Value::PublicKey(k)) => {
            json!({"public_keys": {"account": a, "key": to_hex(k)}})
        }
        (k, v) => json!({"unknown": format!("{k:?} = {v:?}")}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_executor::{WorkloadKind, WorkloadSpec};

    #[test]
    fn generated_transactions_round_trip_through_the_file_format() {
        let spec = WorkloadSpec {
            kind: WorkloadKind::Mixed,
            accounts: 50,
            signed: true,
            work: 3,
            ..WorkloadSpec::default()
        };
        let txs = spec.generator(0, 1).unwrap().batch(300);
        let text = Json::Array(txs.iter().map(transaction_json).collect()).to_string();
        assert_eq!(parse_transactions("t.json", &text).unwrap(), txs);
    }

    #[test]
    fn errors_name_file_entry_and_field() {
        let cases = [
            (
                r#"[{"sender":1,"nonce":1,"op":"transfer","to":2,"token":0,"amount":"12x"}]"#,
                "t.json: entry 0 (transfer): field `amount`: expected an unsigned integer",
            ),
            (
                r#"[{"sender":1,"nonce":1,"op":"transfer","to":2,"token":0,"amount":1},
                 {"sender":1,"nonce":2,"op":"swap","pool":0,"token_in":0,"token_out":1}]"#,
                "t.json: entry 1 (swap): field `amount_in`: missing",
            ),
            (
                r#"[{"sender":1,"nonce":1,"op":"transfr"}]"#,
                "t.json: entry 0: field `op`: unknown operation `transfr`",
            ),
            (
                r#"[{"sender":1,"nonce":1,"op":"balance","amout":3}]"#,
                "t.json: entry 0 (balance): unknown field `amout`",
            ),
            (
                r#"[{"sender":-1,"nonce":1,"op":"balance"}]"#,
                "t.json: entry 0 (balance): field `sender`: expected an unsigned integer",
            ),
            (
                r#"[{"sender":1,"nonce":1,"op":"transfer","to":2,"token":99999999999,"amount":1}]"#,
                "t.json: entry 0 (transfer): field `token`: 99999999999 is above the maximum",
            ),
            (
                r#"[{"sender":1,"nonce":1,"op":"balance","signature":"ab"}]"#,
                "t.json: entry 0 (balance): field `signature`: expected 128 hex digits",
            ),
            (
                r#"[3]"#,
                "t.json: entry 0: expected a JSON object, got a number",
            ),
            (
                r#"{"a":1}"#,
                "t.json: expected a JSON array of transactions, got an object",
            ),
        ];
        for (text, want) in cases {
            let err = format!("{:#}", parse_transactions("t.json", text).unwrap_err());
            assert!(err.starts_with(want), "got: {err}\nwant: {want}");
        }
        let err = format!("{:#}", parse_transactions("t.json", "[{").unwrap_err());
        assert!(err.starts_with("t.json: not valid JSON"), "{err}");
    }

    #[test]
    fn explicit_genesis_and_its_errors() {
        let text = r#"{
            "balances": [{"account": 1, "token": 0, "amount": "340282366920938463463374607431768211455"}],
            "pools": [{"pool": 0, "token0": 0, "token1": 1, "reserve0": 1000, "reserve1": 1000, "lp_supply": 1000}],
            "markets": [{"market": 0, "token": 0, "collateral_factor_bps": 7500}]
        }"#;
        let state = parse_genesis("g.json", text).unwrap();
        assert_eq!(state.balance(1, 0), u128::MAX);
        assert_eq!(state.pool(0).unwrap().reserve1, 1000);
        let bad = r#"{"pools": [{"pool": 0, "token0": 1, "token1": 1}]}"#;
        let err = format!("{:#}", parse_genesis("g.json", bad).unwrap_err());
        assert!(
            err.contains("g.json: invalid genesis") && err.contains("distinct"),
            "{err}"
        );
        let bad = r#"{"balances": [{"account": 1, "token": 0}]}"#;
        let err = format!("{:#}", parse_genesis("g.json", bad).unwrap_err());
        assert!(
            err.starts_with("g.json: balances[0]: field `amount`: missing"),
            "{err}"
        );
        let spec = r#"{"workload": {"kind": "dex", "accounts": 10, "pools": 2}}"#;
        assert_eq!(
            parse_genesis("g.json", spec).unwrap().digest(),
            WorkloadSpec {
                kind: WorkloadKind::Dex,
                accounts: 10,
                pools: 2,
                ..WorkloadSpec::default()
            }
            .genesis()
            .unwrap()
            .digest()
        );
        let bad = r#"{"workload": {"kind": "dex", "acounts": 10}}"#;
        let err = format!("{:#}", parse_genesis("g.json", bad).unwrap_err());
        assert!(
            err.contains("g.json: field `workload`") && err.contains("acounts"),
            "{err}"
        );
    }
}
