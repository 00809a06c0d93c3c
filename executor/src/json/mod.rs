//! The JSON forms of the executor's types — transaction files, genesis files,
//! receipts — as serde implementations on the types themselves (`Transaction`, `Op`,
//! `Receipt`, [`Genesis`]) plus file readers that put the file, the entry, its line
//! and the field into every error.
//!
//! Strictness (every level of every file): a key may appear once (`{"amount":1,
//! "amount":500}` is refused, never "last wins"); unknown keys are refused; integers
//! are exact up to `u128::MAX` / `i128` whether written as JSON numbers or decimal
//! strings, and an error quotes the value as written. The formats are documented in
//! the README ("`tandem exec`").
//!
//! - `integer.rs`: exact integers from a value's raw text;
//! - `object.rs`: an object as raw members (duplicates refused) and typed fields;
//! - `transaction.rs`: transactions, operations and receipts;
//! - `genesis.rs`: the genesis file (a workload spec or explicit sections);
//! - `evm.rs`: the EVM's genesis and transaction files and receipts (`--vm evm`).

mod evm;
mod genesis;
mod integer;
mod object;
mod transaction;

pub use evm::{
    evm_address_json, evm_receipt_json, evm_tx_json, read_evm_genesis, read_evm_genesis_auth,
    read_evm_transactions,
};
pub use genesis::Genesis;
pub(crate) use transaction::{
    deserialize_op, deserialize_receipt, deserialize_transaction, serialize_op, serialize_receipt,
    serialize_transaction,
};

use serde_json::value::RawValue;

use crate::error::Error;
use crate::tx::Transaction;
use object::{Fields, Located, RawObject};

/// A file being read: its name for errors, and its text to turn value addresses
/// into line numbers.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl<'a> Source<'a> {
    fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::File {
            file: self.file.to_string(),
            message: message.to_string(),
        }
    }

    /// The 1-based line of the byte at address `addr`, if it lies in the text.
    fn line_at(&self, addr: usize) -> Option<usize> {
        let base = self.text.as_ptr() as usize;
        let offset = addr.checked_sub(base)?;
        let before = self.text.as_bytes().get(..offset)?;
        Some(1 + before.iter().filter(|b| **b == b'\n').count())
    }

    fn line_of(&self, raw: &RawValue) -> usize {
        self.line_at(raw.get().as_ptr() as usize).unwrap_or(1)
    }

    /// `place, line L: message` for an error about a value of the entry at `entry`.
    fn located(&self, entry: &RawValue, place: &str, error: Located) -> Error {
        let line = error
            .at
            .and_then(|a| self.line_at(a))
            .unwrap_or_else(|| self.line_of(entry));
        self.error(format_args!("{place}, line {line}: {}", error.message))
    }

    /// An error serde_json reported while parsing `entry`'s own text.
    fn parse_error(&self, entry: &RawValue, place: &str, error: &serde_json::Error) -> Error {
        let line = self.line_of(entry) + error.line().saturating_sub(1);
        self.error(format_args!(
            "{place}, line {line}: {}",
            without_position(error)
        ))
    }

    /// Parses the whole file as `T` (raw values borrow from the text).
    fn parse<T: serde::Deserialize<'a>>(&self) -> Result<T, Error> {
        serde_json::from_str(self.text).map_err(|e| self.error(format_args!("not valid JSON: {e}")))
    }
}

/// serde_json's message without its " at line L column C" suffix (the caller
/// reports the line in file coordinates).
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

/// Reads a transaction file: a JSON array of transaction objects. Errors name the
/// file, the entry (index, operation, line) and the field, e.g. `txs.json: entry 3
/// (swap), line 5: field `amount_in`: expected an unsigned integer (a JSON number
/// or a decimal string), got "12x"`.
pub fn read_transactions(file: &str, text: &str) -> Result<Vec<Transaction>, Error> {
    let source = Source { file, text };
    let entries: Vec<&RawValue> =
        source
            .parse()
            .map_err(|_| match serde_json::from_str::<serde_json::Value>(text) {
                Ok(other) => source.error(format_args!(
                    "expected a JSON array of transactions, got {}",
                    kind_of(&other)
                )),
                Err(e) => source.error(format_args!("not valid JSON: {e}")),
            })?;
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let place = format!("entry {i}");
            let object: RawObject<&RawValue> = serde_json::from_str(entry.get())
                .map_err(|e| source.parse_error(entry, &place, &e))?;
            let fields = Fields::new(&object);
            let place = match fields.string("op") {
                Ok(op) if transaction::is_op_name(&op) => format!("{place} ({op})"),
                _ => place,
            };
            transaction::transaction_from_fields(&fields)
                .map_err(|e| source.located(entry, &place, e))
        })
        .collect()
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    use serde_json::Value as J;
    match v {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "an array",
        J::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Key;
    use crate::tx::{Op, SmallBankOp};
    use crate::workload::{WorkloadKind, WorkloadSpec};

    fn tx_error(text: &str) -> String {
        read_transactions("t.json", text).unwrap_err().to_string()
    }

    fn genesis_error(text: &str) -> String {
        Genesis::read("g.json", text).unwrap_err().to_string()
    }

    #[test]
    fn transaction_errors_name_file_entry_line_and_field() {
        let cases = [
            (
                r#"[{"sender":1,"nonce":1,"op":"transfer","to":2,"token":0,"amount":"12x"}]"#,
                "t.json: entry 0 (transfer), line 1: field `amount`: expected an unsigned integer (a JSON number or a decimal string), got \"12x\"",
            ),
            (
                "[{\"sender\":1,\"nonce\":1,\"op\":\"transfer\",\"to\":2,\"token\":0,\"amount\":1},\n {\"sender\":1,\"nonce\":2,\n  \"op\":\"swap\",\"pool\":0,\"token_in\":0,\"token_out\":1}]",
                "t.json: entry 1 (swap), line 2: field `amount_in`: missing",
            ),
            (
                r#"[{"sender":1,"nonce":1,"op":"transfr"}]"#,
                "t.json: entry 0, line 1: field `op`: unknown operation `transfr`",
            ),
            (
                r#"[{"sender":1,"nonce":1,"op":"balance","amout":3}]"#,
                "t.json: entry 0 (balance), line 1: unknown field `amout`",
            ),
            (
                r#"[{"sender":-1,"nonce":1,"op":"balance"}]"#,
                "t.json: entry 0 (balance), line 1: field `sender`: expected an unsigned integer",
            ),
            (
                r#"[{"sender":1,"nonce":1,"op":"transfer","to":2,"token":99999999999,"amount":1}]"#,
                "t.json: entry 0 (transfer), line 1: field `token`: 99999999999 is above the maximum 4294967295",
            ),
            (
                r#"[{"sender":1,"nonce":1,"op":"balance","signature":"ab"}]"#,
                "t.json: entry 0 (balance), line 1: field `signature`: expected 128 hex digits",
            ),
            (
                r#"[{"sender":1,"nonce":1,"op":"transfer","to":2,"token":0,"amount":340282366920938463463374607431768211456}]"#,
                "t.json: entry 0 (transfer), line 1: field `amount`: 340282366920938463463374607431768211456 is above the maximum",
            ),
            (
                "[3]",
                "t.json: entry 0, line 1: invalid type: integer `3`, expected a JSON object",
            ),
            (
                r#"{"a":1}"#,
                "t.json: expected a JSON array of transactions, got an object",
            ),
            ("[{", "t.json: not valid JSON"),
        ];
        for (text, want) in cases {
            let err = tx_error(text);
            assert!(err.starts_with(want), "got:  {err}\nwant: {want}");
        }
    }

    #[test]
    fn duplicate_keys_are_refused_at_every_level_of_a_transaction() {
        let err = tx_error(
            "[\n{\"sender\":1,\"nonce\":1,\"op\":\"transfer\",\"to\":2,\"token\":0,\"amount\":1,\"amount\":500}]",
        );
        assert!(
            err.starts_with("t.json: entry 0, line 2: duplicate key `amount`"),
            "{err}"
        );
        let err = tx_error(
            r#"[{"sender":1,"nonce":1,"op":"mint","to":2,"token":0,"amount":1,"op":"transfer"}]"#,
        );
        assert!(err.contains("duplicate key `op`"), "{err}");
        let err = tx_error(r#"[{"sender":1,"sender":2,"nonce":1,"op":"balance"}]"#);
        assert!(
            err.contains("entry 0") && err.contains("duplicate key `sender`"),
            "{err}"
        );
        // Through serde directly (no file): refused too.
        let direct = serde_json::from_str::<Vec<Transaction>>(
            r#"[{"sender":1,"nonce":1,"op":"transfer","to":2,"token":0,"amount":1,"amount":500}]"#,
        );
        assert!(
            direct
                .unwrap_err()
                .to_string()
                .contains("duplicate key `amount`")
        );
    }

    #[test]
    fn integers_are_exact_as_numbers_and_strings() {
        let max = u128::MAX;
        let text = format!(
            r#"[{{"sender":18446744073709551615,"nonce":"18446744073709551615","op":"transfer","to":2,"token":0,"amount":{max}}},
               {{"sender":1,"nonce":2,"op":"transfer","to":2,"token":0,"amount":"{max}"}},
               {{"sender":1,"nonce":3,"op":"transact_savings","amount":{min}}},
               {{"sender":1,"nonce":4,"op":"transact_savings","amount":"-7"}}]"#,
            min = i128::MIN
        );
        let txs = read_transactions("t.json", &text).unwrap();
        assert_eq!(txs[0].sender, u64::MAX);
        assert_eq!(txs[0].nonce, u64::MAX);
        for tx in &txs[..2] {
            assert_eq!(
                tx.op,
                Op::Transfer {
                    to: 2,
                    token: 0,
                    amount: max
                }
            );
        }
        assert_eq!(
            txs[2].op,
            Op::SmallBank(SmallBankOp::TransactSavings { amount: i128::MIN })
        );
        assert_eq!(
            txs[3].op,
            Op::SmallBank(SmallBankOp::TransactSavings { amount: -7 })
        );
        // An error quotes what was typed, never a float.
        let err = tx_error(r#"[{"sender":1,"nonce":18446744073709551616,"op":"balance"}]"#);
        assert!(
            err.contains("18446744073709551616 is above the maximum 18446744073709551615"),
            "{err}"
        );
        assert!(!err.contains("e+"), "{err}");
    }

    #[test]
    fn explicit_genesis_reads_and_dumps_back() {
        let key = crate::tx::to_hex(&crate::account_public_key(1, 1).unwrap());
        let text = format!(
            r#"{{
            "balances": [{{"account": 1, "token": 0, "amount": 340282366920938463463374607431768211455}}],
            "pools": [{{"pool": 0, "token0": 0, "token1": 1, "reserve0": 1000, "reserve1": "1000", "lp_supply": 1000}}],
            "markets": [{{"market": 0, "token": 0, "collateral_factor_bps": 7500}}],
            "public_keys": [{{"account": 1, "key": "{key}"}}]
        }}"#
        );
        let genesis = Genesis::read("g.json", &text).unwrap();
        let state = genesis.state().unwrap();
        assert_eq!(state.balance(1, 0), u128::MAX);
        assert_eq!(state.pool(0).unwrap().reserve1, 1000);
        let dumped = serde_json::to_string(&Genesis::from_state(&state)).unwrap();
        let again = Genesis::read("d.json", &dumped).unwrap().state().unwrap();
        assert_eq!(again, state);
        let via_serde = serde_json::from_str::<Genesis>(&dumped).unwrap();
        assert_eq!(via_serde.state().unwrap(), state);
    }

    #[test]
    fn genesis_duplicates_are_refused_with_file_entry_and_key() {
        let err = genesis_error(
            r#"{"balances": [{"account": 1, "token": 0, "amount": 1}], "balances": []}"#,
        );
        assert!(
            err.starts_with("g.json: ") && err.contains("duplicate key `balances`"),
            "{err}"
        );
        let err = genesis_error(
            "{\"balances\": [{\"account\": 1, \"token\": 0, \"amount\": 1},\n  {\"account\": 1, \"token\": 0, \"amount\": 5}]}",
        );
        assert_eq!(
            err,
            "g.json: balances[1], line 2: a second entry for account 1, token 0 (the first is balances[0])"
        );
        let err = genesis_error(
            r#"{"balances": [{"account": 1, "token": 0, "amount": 1, "amount": 2}]}"#,
        );
        assert!(
            err.starts_with("g.json: balances[0], line 1: duplicate key `amount`"),
            "{err}"
        );
        let err = genesis_error(
            r#"{"pools": [{"pool": 0, "token0": 0, "token1": 1}, {"pool": 0, "token0": 1, "token1": 2}]}"#,
        );
        assert!(
            err.contains("pools[1]") && err.contains("a second entry for pool 0"),
            "{err}"
        );
        let err = genesis_error(r#"{"workload": {"kind": "dex", "mix": {"swap": 1, "swap": 90}}}"#);
        assert!(
            err.starts_with("g.json: workload, line 1: duplicate key `swap`"),
            "{err}"
        );
        let err = genesis_error(r#"{"workload": {"kind": "dex", "kind": "transfer"}}"#);
        assert!(err.contains("duplicate field `kind`"), "{err}");
    }

    #[test]
    fn genesis_errors_name_the_entry_and_field() {
        let err = genesis_error(r#"{"pools": [{"pool": 0, "token0": 1, "token1": 1}]}"#);
        assert!(
            err.starts_with("g.json: pools[0], line 1: a pool needs two distinct tokens"),
            "{err}"
        );
        let err = genesis_error(r#"{"balances": [{"account": 1, "token": 0}]}"#);
        assert!(
            err.starts_with("g.json: balances[0], line 1: field `amount`: missing"),
            "{err}"
        );
        let err = genesis_error(r#"{"balances": [{"acount": 1}]}"#);
        assert!(
            err.starts_with("g.json: balances[0], line 1: unknown field `acount`"),
            "{err}"
        );
        let err = genesis_error(r#"{"balances": {"account": 1}}"#);
        assert!(
            err.contains("`balances`, line 1: must be an array"),
            "{err}"
        );
        let err = genesis_error(r#"{"workload": {"kind": "dex", "acounts": 10}}"#);
        assert!(
            err.starts_with("g.json: workload, line 1: unknown field `acounts`"),
            "{err}"
        );
        let err = genesis_error(r#"{"workload": {"kind": "dex"}, "balances": []}"#);
        assert!(err.contains("cannot be combined"), "{err}");
        let weak = r#"{"public_keys": [{"account": 3, "key": "0100000000000000000000000000000000000000000000000000000000000000"}]}"#;
        let err = genesis_error(weak);
        assert!(
            err.starts_with(
                "g.json: public_keys[0], line 1: field `key`: public key is a point of small order"
            ),
            "{err}"
        );
        let spec = r#"{"workload": {"kind": "dex", "accounts": 10, "pools": 2}}"#;
        let want = WorkloadSpec {
            kind: WorkloadKind::Dex,
            accounts: 10,
            pools: 2,
            ..WorkloadSpec::default()
        };
        assert_eq!(
            Genesis::read("g.json", spec).unwrap(),
            Genesis::Workload(want)
        );
        assert!(
            matches!(Genesis::from_state(&crate::State::new()), Genesis::Entries(e) if e.is_empty())
        );
        let _ = Key::Nonce(0);
    }
}
