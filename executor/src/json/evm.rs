//! The JSON forms of the EVM's files (`tandem exec --vm evm`, README "`tandem exec`"):
//! the genesis (`{"workload": {...}}`, an [`EvmWorkloadSpec`]), the transaction file
//! (a JSON array or JSON lines of [`EvmTx`] objects) and receipts.
//!
//! A transaction: `from` and `to` are an address — 40 hex digits (optional `0x`),
//! an account index (a JSON number: workload account `i`), `"deployer"`, or a
//! contract of the genesis by name, `"token:N"`, `"pair:N"`, `"market:N"`,
//! `"staking:N"` —; `to: null` creates a contract from `data`. `value` (wei,
//! default 0), `nonce`, `gas_limit`; calldata either `data` (hex) or a named call
//! `call` (`"swap(bool,uint256,uint256)"`) with `args` (one per parameter:
//! `address`, `bool`, `uintN`); an optional `access_list` of `{"address", "slots":
//! [64 hex digits, …]}`; what it pays for gas, wei per gas (default: nothing):
//! `gas_price` (legacy, or type 1 with a list), or `max_fee_per_gas` and
//! `max_priority_fee_per_gas` together (EIP-1559). Or a signed transaction, `{"raw": "0x…"}` alone: Ethereum's
//! signed bytes, legacy EIP-155, EIP-2930 type 1 or EIP-1559 type 2
//! (`EvmTx::decode_signed`; its sender is recovered when it runs). The
//! same strictness as the ledger's files: unknown or repeated keys refused, errors
//! name file, entry, line and field.
//!
//! The genesis may say `"auth": "secp256k1"` beside `"workload"` (default
//! `"channel"`): its accounts are then the signing keys' addresses
//! (`EvmAccounts`), and every transaction must be signed.

use serde_json::Value;
use serde_json::value::RawValue;

use super::integer;
use super::object::{Fields, Located, RawObject};
use super::{Source, kind_of};
use crate::error::Error;
use crate::evm::{
    Abi, AccessListEntry, Address, DEPLOYER, Deployment, EvmAuth, EvmReceipt, EvmTx,
    EvmWorkloadKind, EvmWorkloadSpec, U256, account_address,
};
use crate::tx::{from_hex, to_hex};

const TX_FIELDS: &[&str] = &[
    "from",
    "to",
    "value",
    "nonce",
    "gas_limit",
    "data",
    "call",
    "args",
    "access_list",
    "gas_price",
    "max_fee_per_gas",
    "max_priority_fee_per_gas",
    "raw",
];

/// Reads an EVM genesis file: `{"workload": {"kind": "uniswap", "accounts": 1000,
/// "instances": 1, "zipf": 0.0, "seed": 0}}` (all but `kind` optional, these the
/// defaults). Refuses an `"auth"` other than `"channel"`: use
/// [`read_evm_genesis_auth`] to take it.
pub fn read_evm_genesis(file: &str, text: &str) -> Result<EvmWorkloadSpec, Error> {
    match read_evm_genesis_auth(file, text)? {
        (spec, EvmAuth::Channel) => Ok(spec),
        (_, auth) => Err(Source { file, text }.error(format_args!(
            "`auth`: {auth} is not available here (only channel)"
        ))),
    }
}

/// [`read_evm_genesis`] with the genesis's optional `"auth"`: `"channel"` (the
/// default) or `"secp256k1"`.
pub fn read_evm_genesis_auth(file: &str, text: &str) -> Result<(EvmWorkloadSpec, EvmAuth), Error> {
    let source = Source { file, text };
    let top: RawObject<&RawValue> = serde_json::from_str(text).map_err(|e| {
        source.error(format_args!(
            "expected a JSON object `{{\"workload\": {{…}}}}`: {e}"
        ))
    })?;
    let top = Fields::new(&top);
    top.only(&["workload", "auth"])
        .map_err(|e| source.error(e))?;
    let auth = if top.has("auth") {
        top.string("auth")
            .map_err(|e| source.error(e))?
            .parse::<EvmAuth>()
            .map_err(|e| source.error(format_args!("`auth`: {e}")))?
    } else {
        EvmAuth::Channel
    };
    let raw = top.raw("workload").map_err(|e| source.error(e))?;
    let object: RawObject<&RawValue> =
        serde_json::from_str(raw.get()).map_err(|e| source.parse_error(raw, "workload", &e))?;
    let fields = Fields::new(&object);
    let spec = spec_from_fields(&fields).map_err(|e| source.located(raw, "workload", e))?;
    spec.validate()
        .map_err(|e| source.error(format_args!("workload: {e}")))?;
    Ok((spec, auth))
}

fn spec_from_fields(fields: &Fields) -> Result<EvmWorkloadSpec, Located> {
    fields.only(&["kind", "accounts", "instances", "zipf", "seed"])?;
    let kind_name = fields.string("kind")?;
    let kind: EvmWorkloadKind = kind_name
        .parse()
        .map_err(|e: Error| fields.located("kind", e))?;
    let mut spec = EvmWorkloadSpec::new(kind);
    spec.accounts =
        fields.unsigned_or("accounts", u128::from(u64::MAX), spec.accounts.into())? as u64;
    spec.instances = fields.unsigned_or("instances", u128::from(u32::MAX), 1)? as u32;
    spec.seed = fields.unsigned_or("seed", u128::from(u64::MAX), 0)? as u64;
    if fields.has("zipf") {
        let raw = fields.raw("zipf")?;
        spec.zipf = serde_json::from_str::<f64>(raw.get()).map_err(|_| {
            fields.located(
                "zipf",
                format!("expected a number, got {}", integer::shown(raw)),
            )
        })?;
    }
    Ok(spec)
}

/// Reads an EVM transaction file (a JSON array of transaction objects, or one
/// object per line), resolving contract names against `deployment`. Errors name
/// the file, the entry, its line and the field, e.g. `txs.json: entry 2, line 3:
/// field `gas_limit`: missing`.
pub fn read_evm_transactions(
    file: &str,
    text: &str,
    deployment: &Deployment,
) -> Result<Vec<EvmTx>, Error> {
    let source = Source { file, text };
    let entries: Vec<&RawValue> = if text.trim_start().starts_with('[') {
        source
            .parse()
            .map_err(|_| match serde_json::from_str::<Value>(text) {
                Ok(other) => source.error(format_args!(
                    "expected a JSON array of transactions, got {}",
                    kind_of(&other)
                )),
                Err(e) => source.error(format_args!("not valid JSON: {e}")),
            })?
    } else {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let raw: &RawValue = serde_json::from_str(line)
                .map_err(|e| source.error(format_args!("line {}: not valid JSON: {e}", n + 1)))?;
            entries.push(raw);
        }
        entries
    };
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let place = format!("entry {i}");
            let object: RawObject<&RawValue> = serde_json::from_str(entry.get())
                .map_err(|e| source.parse_error(entry, &place, &e))?;
            let fields = Fields::new(&object);
            tx_from_fields(&fields, deployment).map_err(|e| source.located(entry, &place, e))
        })
        .collect()
}

/// An address from its JSON form (see the module docs); `field` names it in errors.
fn address(raw: &RawValue, field: &str, deployment: &Deployment) -> Result<Address, Located> {
    let fail = |message: String| Located {
        message: format!("field `{field}`: {message}"),
        at: Some(raw.get().as_ptr() as usize),
    };
    if let Ok(index) = integer::unsigned(raw, u128::from(u64::MAX))
        && !raw.get().starts_with('"')
    {
        return Ok(account_address(index as u64));
    }
    let Ok(s) = serde_json::from_str::<String>(raw.get()) else {
        return Err(fail(format!(
            "expected an address (40 hex digits, an account number, \"deployer\" or a contract such as \"pair:0\"), got {}",
            integer::shown(raw)
        )));
    };
    if s == "deployer" {
        return Ok(DEPLOYER);
    }
    if let Some((name, n)) = s.split_once(':') {
        let list = match name {
            "token" => &deployment.tokens,
            "pair" => &deployment.pairs,
            "market" => &deployment.markets,
            "staking" => &deployment.staking,
            _ => {
                return Err(fail(format!(
                    "unknown contract kind `{name}` (expected token, pair, market or staking)"
                )));
            }
        };
        let index: usize = n
            .parse()
            .map_err(|_| fail(format!("`{n}` is not a contract number")))?;
        return list.get(index).copied().ok_or_else(|| {
            fail(format!(
                "the genesis has no {s} (it deployed {} {name} contract(s))",
                list.len()
            ))
        });
    }
    let hex = s.strip_prefix("0x").unwrap_or(&s);
    from_hex::<20>(hex).map(Address::new).ok_or_else(|| {
        fail(format!(
            "expected an address (40 hex digits, an account number, \"deployer\" or a contract such as \"pair:0\"), got {}",
            integer::shown(raw)
        ))
    })
}

/// Bytes written as hex, with or without `0x`.
fn hex_bytes(raw: &RawValue, field: &str) -> Result<Vec<u8>, Located> {
    let fail = || Located {
        message: format!(
            "field `{field}`: expected hex bytes (an even number of hex digits, optional 0x), got {}",
            integer::shown(raw)
        ),
        at: Some(raw.get().as_ptr() as usize),
    };
    let s = serde_json::from_str::<String>(raw.get()).map_err(|_| fail())?;
    let hex = s.strip_prefix("0x").unwrap_or(&s);
    if hex.len() % 2 != 0 {
        return Err(fail());
    }
    (0..hex.len() / 2)
        .map(|i| {
            hex.get(2 * i..2 * i + 2)
                .and_then(from_hex::<1>)
                .map(|b| b[0])
                .ok_or_else(fail)
        })
        .collect()
}

fn tx_from_fields(fields: &Fields, deployment: &Deployment) -> Result<EvmTx, Located> {
    fields.only(TX_FIELDS)?;
    if fields.has("raw") {
        if let Some(other) = TX_FIELDS.iter().find(|f| **f != "raw" && fields.has(f)) {
            return Err(fields.located(other, "a `raw` signed transaction stands alone"));
        }
        let bytes = hex_bytes(fields.raw("raw")?, "raw")?;
        return EvmTx::decode_signed(&bytes).map_err(|e| fields.located("raw", e));
    }
    let from = address(fields.raw("from")?, "from", deployment)?;
    let to_raw = fields.raw("to")?;
    let to = if to_raw.get() == "null" {
        None
    } else {
        Some(address(to_raw, "to", deployment)?)
    };
    let value = fields.unsigned_or("value", u128::MAX, 0)?;
    let nonce = fields.u64("nonce")?;
    let gas_limit = fields.u64("gas_limit")?;
    let data = match (fields.has("data"), fields.has("call")) {
        (true, true) => {
            return Err(fields.located("call", "give either `data` or `call`, not both"));
        }
        (true, false) => {
            if fields.has("args") {
                return Err(fields.located("args", "`args` goes with `call`, not `data`"));
            }
            hex_bytes(fields.raw("data")?, "data")?
        }
        (false, true) => calldata(fields, deployment)?,
        (false, false) => {
            if fields.has("args") {
                return Err(fields.located("args", "`args` needs a `call`"));
            }
            Vec::new()
        }
    };
    let mut tx = EvmTx {
        from: from.into_array(),
        to: to.map(|a| a.into_array()),
        value: U256::from(value).to_be_bytes::<32>(),
        nonce,
        gas_limit,
        data,
        access_list: None,
        eip1559: None,
        gas_price: 0,
        signature: None,
    };
    if fields.has("access_list") {
        tx.access_list = Some(access_list(fields.raw("access_list")?, deployment)?);
    }
    match (
        fields.has("max_fee_per_gas"),
        fields.has("max_priority_fee_per_gas"),
    ) {
        (true, true) => {
            if fields.has("gas_price") {
                return Err(fields.located(
                    "gas_price",
                    "give either `gas_price` or the EIP-1559 fee caps, not both",
                ));
            }
            tx.eip1559 = Some(crate::evm::Eip1559Fees {
                max_fee_per_gas: fields.unsigned_or("max_fee_per_gas", u128::MAX, 0)?,
                max_priority_fee_per_gas: fields.unsigned_or(
                    "max_priority_fee_per_gas",
                    u128::MAX,
                    0,
                )?,
            });
        }
        (false, false) => tx.gas_price = fields.unsigned_or("gas_price", u128::MAX, 0)?,
        (true, false) => {
            return Err(fields.located(
                "max_priority_fee_per_gas",
                "missing: EIP-1559 fee caps come in pairs",
            ));
        }
        (false, true) => {
            return Err(fields.located(
                "max_fee_per_gas",
                "missing: EIP-1559 fee caps come in pairs",
            ));
        }
    }
    Ok(tx)
}

/// A named call's calldata: the signature's selector, then `args` encoded by the
/// signature's parameter types.
fn calldata(fields: &Fields, deployment: &Deployment) -> Result<Vec<u8>, Located> {
    let signature = fields.string("call")?;
    let params = signature
        .strip_suffix(')')
        .and_then(|s| s.split_once('('))
        .filter(|(name, _)| !name.is_empty())
        .map(|(_, p)| p)
        .ok_or_else(|| {
            fields.located(
                "call",
                format!("expected a function signature such as \"transfer(address,uint256)\", got \"{signature}\""),
            )
        })?;
    let types: Vec<&str> = if params.is_empty() {
        Vec::new()
    } else {
        params.split(',').collect()
    };
    let args: Vec<&RawValue> = if fields.has("args") {
        let raw = fields.raw("args")?;
        serde_json::from_str(raw.get())
            .map_err(|_| fields.located("args", "expected an array of arguments"))?
    } else {
        Vec::new()
    };
    if args.len() != types.len() {
        return Err(fields.located(
            if fields.has("args") { "args" } else { "call" },
            format!(
                "`{signature}` takes {} argument(s), {} given",
                types.len(),
                args.len()
            ),
        ));
    }
    let mut abi = Abi::call(&signature);
    for (i, (ty, raw)) in types.iter().zip(&args).enumerate() {
        let field = format!("args[{i}]");
        let fail = |message: String| Located {
            message: format!("field `{field}`: {message}"),
            at: Some(raw.get().as_ptr() as usize),
        };
        abi = match *ty {
            "address" => abi.address(address(raw, &field, deployment)?),
            "bool" => match raw.get() {
                "true" => abi.bool(true),
                "false" => abi.bool(false),
                other => return Err(fail(format!("expected true or false, got {other}"))),
            },
            t if t.starts_with("uint") => {
                abi.u128(integer::unsigned(raw, u128::MAX).map_err(fail)?)
            }
            other => {
                return Err(fields.located(
                    "call",
                    format!("parameter type `{other}` is not supported (address, bool, uintN); give `data` instead"),
                ));
            }
        };
    }
    Ok(abi.finish())
}

fn access_list(raw: &RawValue, deployment: &Deployment) -> Result<Vec<AccessListEntry>, Located> {
    let fail = |message: String| Located {
        message: format!("field `access_list`: {message}"),
        at: Some(raw.get().as_ptr() as usize),
    };
    let items: Vec<&RawValue> = serde_json::from_str(raw.get())
        .map_err(|_| fail("expected an array of {\"address\", \"slots\"} objects".into()))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let object: RawObject<&RawValue> =
                serde_json::from_str(item.get()).map_err(|e| fail(format!("entry {i}: {e}")))?;
            let f = Fields::new(&object);
            f.only(&["address", "slots"])?;
            let address = address(f.raw("address")?, "access_list address", deployment)?;
            let slots: Vec<String> = if f.has("slots") {
                serde_json::from_str(f.raw("slots")?.get())
                    .map_err(|_| f.located("slots", "expected an array of hex strings"))?
            } else {
                Vec::new()
            };
            let slots = slots
                .iter()
                .map(|s| {
                    from_hex::<32>(s.strip_prefix("0x").unwrap_or(s)).ok_or_else(|| {
                        f.located("slots", format!("expected 64 hex digits, got \"{s}\""))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(AccessListEntry {
                address: address.into_array(),
                slots,
            })
        })
        .collect()
}

/// An address in its shortest JSON form: an account number, `"deployer"`, a
/// contract name of `deployment`, else `0x` and hex.
pub fn evm_address_json(address: Address, deployment: &Deployment) -> Value {
    let bytes = address.as_slice();
    if bytes[0] == 0x7a && bytes[1..12].iter().all(|b| *b == 0) {
        let mut index = [0u8; 8];
        index.copy_from_slice(&bytes[12..]);
        return Value::from(u64::from_be_bytes(index));
    }
    if address == DEPLOYER {
        return Value::from("deployer");
    }
    for (name, list) in [
        ("token", &deployment.tokens),
        ("pair", &deployment.pairs),
        ("market", &deployment.markets),
        ("staking", &deployment.staking),
    ] {
        if let Some(i) = list.iter().position(|a| *a == address) {
            return Value::from(format!("{name}:{i}"));
        }
    }
    Value::from(format!("0x{}", to_hex(bytes)))
}

/// A transaction in the file format [`read_evm_transactions`] reads (a signed
/// one as `{"raw": …}`).
pub fn evm_tx_json(tx: &EvmTx, deployment: &Deployment) -> Value {
    if tx.signature.is_some()
        && let Ok(bytes) = tx.encode()
    {
        return serde_json::json!({ "raw": format!("0x{}", to_hex(&bytes)) });
    }
    let mut out = serde_json::Map::new();
    out.insert("from".into(), evm_address_json(tx.sender(), deployment));
    out.insert(
        "to".into(),
        tx.recipient()
            .map_or(Value::Null, |a| evm_address_json(a, deployment)),
    );
    if !tx.value().is_zero() {
        out.insert("value".into(), Value::from(tx.value().to_string()));
    }
    out.insert("nonce".into(), Value::from(tx.nonce));
    out.insert("gas_limit".into(), Value::from(tx.gas_limit));
    if tx.gas_price != 0 {
        out.insert("gas_price".into(), Value::from(tx.gas_price.to_string()));
    }
    if let Some(fees) = tx.eip1559 {
        out.insert(
            "max_fee_per_gas".into(),
            Value::from(fees.max_fee_per_gas.to_string()),
        );
        out.insert(
            "max_priority_fee_per_gas".into(),
            Value::from(fees.max_priority_fee_per_gas.to_string()),
        );
    }
    if !tx.data.is_empty() {
        out.insert(
            "data".into(),
            Value::from(format!("0x{}", to_hex(&tx.data))),
        );
    }
    if let Some(list) = &tx.access_list {
        let entries: Vec<Value> = list
            .iter()
            .map(|e| {
                serde_json::json!({
                    "address": format!("0x{}", to_hex(&e.address)),
                    "slots": e.slots.iter().map(|s| format!("0x{}", to_hex(s))).collect::<Vec<_>>(),
                })
            })
            .collect();
        out.insert("access_list".into(), Value::from(entries));
    }
    Value::Object(out)
}

/// A receipt as `tandem exec --vm evm` prints it: `status` (`success`, `reverted`,
/// `out of gas`, …), `gas_used`, `fee` and `tip` (wei, decimal strings: what the
/// sender paid, and the part of it credited to the block beneficiary), `logs`
/// (address, topics, data in hex), `output`.
pub fn evm_receipt_json(receipt: &EvmReceipt) -> Value {
    serde_json::json!({
        "status": receipt.status.to_string(),
        "gas_used": receipt.gas_used,
        "fee": receipt.fee.to_string(),
        "tip": receipt.tip.to_string(),
        "logs": receipt.logs.iter().map(|l| serde_json::json!({
            "address": format!("0x{}", to_hex(&l.address)),
            "topics": l.topics.iter().map(|t| format!("0x{}", to_hex(t))).collect::<Vec<_>>(),
            "data": format!("0x{}", to_hex(&l.data)),
        })).collect::<Vec<_>>(),
        "output": format!("0x{}", to_hex(&receipt.output)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Deployment {
        Deployment {
            tokens: vec![Address::with_last_byte(1), Address::with_last_byte(2)],
            pairs: vec![Address::with_last_byte(3)],
            ..Deployment::default()
        }
    }

    #[test]
    fn evm_transaction_files_round_trip_and_name_entry_and_field() {
        let d = deployment();
        let text = r#"[
  {"from": 3, "to": "pair:0", "nonce": 0, "gas_limit": 200000, "call": "swap(bool,uint256,uint256)", "args": [true, "1000", 0]},
  {"from": "deployer", "to": 5, "value": "7", "nonce": 1, "gas_limit": 21000,
   "access_list": [{"address": "token:1", "slots": ["0x0000000000000000000000000000000000000000000000000000000000000001"]}]},
  {"from": 4, "to": 5, "nonce": 0, "gas_limit": 21000, "gas_price": "2000000000"},
  {"from": 4, "to": 5, "nonce": 1, "gas_limit": 21000, "max_fee_per_gas": 3000000000, "max_priority_fee_per_gas": "1000000000"}
]"#;
        let txs = read_evm_transactions("t.json", text, &d).unwrap();
        assert_eq!((txs[2].gas_price, txs[2].tx_type()), (2_000_000_000, 0));
        assert_eq!(
            txs[3].eip1559,
            Some(crate::evm::Eip1559Fees {
                max_fee_per_gas: 3_000_000_000,
                max_priority_fee_per_gas: 1_000_000_000
            })
        );
        assert_eq!(txs[0].gas_price, 0);
        for (fields, bad) in [
            (r#""max_fee_per_gas": 3"#, "max_priority_fee_per_gas"),
            (
                r#""gas_price": 1, "max_fee_per_gas": 3, "max_priority_fee_per_gas": 1"#,
                "gas_price",
            ),
        ] {
            let text =
                format!(r#"[{{"from": 4, "to": 5, "nonce": 0, "gas_limit": 21000, {fields}}}]"#);
            let e = read_evm_transactions("f.json", &text, &d)
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
        assert_eq!(txs[0].to, Some(d.pairs[0].into_array()));
        assert_eq!(
            txs[0].data,
            Abi::call("swap(bool,uint256,uint256)")
                .bool(true)
                .u128(1000)
                .u128(0)
                .finish()
        );
        assert_eq!(txs[1].sender(), DEPLOYER);
        assert_eq!(txs[1].value(), U256::from(7));
        assert_eq!(txs[1].access_list.as_ref().unwrap()[0].slots.len(), 1);
        // Written back and read again (as JSON lines), the same transactions.
        let lines: Vec<String> = txs.iter().map(|t| evm_tx_json(t, &d).to_string()).collect();
        let again = read_evm_transactions("t.jsonl", &lines.join("\n"), &d).unwrap();
        assert_eq!(again, txs);

        let bad = r#"[
  {"from": 3, "to": "pair:0", "nonce": 0, "gas_limit": 1},
  {"from": 3, "to": "pair:0", "nonce": 1, "gas_limit": "lots"}
]"#;
        let e = read_evm_transactions("t.json", bad, &d)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.json")
                && e.contains("entry 1")
                && e.contains("line 3")
                && e.contains("`gas_limit`"),
            "{e}"
        );
        let e = read_evm_transactions(
            "t.json",
            r#"[{"from": 3, "to": "pair:4", "nonce": 0, "gas_limit": 1}]"#,
            &d,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("entry 0") && e.contains("`to`") && e.contains("no pair:4"),
            "{e}"
        );
        let e = read_evm_transactions("t.json", r#"[{"from": 3, "to": 4, "nonce": 0, "gas_limit": 1, "call": "f(uint256)", "args": [1, 2]}]"#, &d)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`args`") && e.contains("takes 1"), "{e}");
        let e = read_evm_transactions(
            "t.json",
            r#"[{"from": 3, "to": 4, "nonce": 0, "gas_limit": 1, "gas": 5}]"#,
            &d,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `gas`"), "{e}");
    }

    #[test]
    fn evm_genesis_files_are_strict() {
        let spec = read_evm_genesis(
            "g.json",
            r#"{"workload": {"kind": "uniswap", "accounts": 20, "instances": 2, "zipf": 0.5}}"#,
        )
        .unwrap();
        assert_eq!(
            (spec.kind, spec.accounts, spec.instances, spec.zipf),
            (EvmWorkloadKind::Uniswap, 20, 2, 0.5)
        );
        let e = read_evm_genesis("g.json", r#"{"workload": {"kind": "dex"}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("g.json") && e.contains("`kind`"), "{e}");
        let e = read_evm_genesis("g.json", r#"{"workload": {"kind": "erc20", "pools": 2}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `pools`"), "{e}");
    }
}
