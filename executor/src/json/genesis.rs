//! The genesis file: either `{"workload": {…spec…}}`, whose state is generated
//! deterministically, or explicit sections of entries (every section optional):
//! `balances`, `nonces`, `pools`, `lp`, `markets`, `positions`, `public_keys`.
//! A section may appear once, an entry's key (e.g. one balance per account and
//! token) once across the file, and every entry is validated as the state would
//! (`check_entry`: kinds, pool and market invariants, public keys that are canonical
//! curve points of large order). `tandem exec --dump-state` prints a state in this
//! form, so a dumped state is a valid genesis.

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;

use super::Source;
use super::object::{Fields, Located, RawObject};
use crate::amm::Pool;
use crate::error::Error;
use crate::lending::{Market, Position};
use crate::state::{Key, State, Value, check_entry};
use crate::tx::to_hex;
use crate::workload::WorkloadSpec;

/// A genesis: a workload spec or explicit state entries.
#[derive(Clone, Debug, PartialEq)]
pub enum Genesis {
    /// Generate the state from a workload spec.
    Workload(WorkloadSpec),
    /// These entries (keys distinct, each entry valid).
    Entries(Vec<(Key, Value)>),
}

/// How a section field is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// An integer no larger than the bound (a JSON number or a decimal string).
    Max(u128),
    /// A `u128` that defaults to 0 when absent.
    AmountOr0,
    /// 32 bytes as 64 hex digits (a public key).
    Bytes32,
}

const U64: Kind = Kind::Max(u64::MAX as u128);
const U32: Kind = Kind::Max(u32::MAX as u128);
const U16: Kind = Kind::Max(u16::MAX as u128);
const U128: Kind = Kind::Max(u128::MAX);

/// A section: its name and its fields in order.
struct Section {
    name: &'static str,
    fields: &'static [(&'static str, Kind)],
}

const SECTIONS: [Section; 7] = [
    Section {
        name: "balances",
        fields: &[("account", U64), ("token", U32), ("amount", U128)],
    },
    Section {
        name: "nonces",
        fields: &[("account", U64), ("nonce", U64)],
    },
    Section {
        name: "pools",
        fields: &[
            ("pool", U32),
            ("token0", U32),
            ("token1", U32),
            ("reserve0", Kind::AmountOr0),
            ("reserve1", Kind::AmountOr0),
            ("lp_supply", Kind::AmountOr0),
        ],
    },
    Section {
        name: "lp",
        fields: &[("pool", U32), ("account", U64), ("amount", U128)],
    },
    Section {
        name: "markets",
        fields: &[
            ("market", U32),
            ("token", U32),
            ("collateral_factor_bps", U16),
            ("total_deposits", Kind::AmountOr0),
            ("total_borrows", Kind::AmountOr0),
        ],
    },
    Section {
        name: "positions",
        fields: &[
            ("market", U32),
            ("account", U64),
            ("deposit", Kind::AmountOr0),
            ("borrow", Kind::AmountOr0),
        ],
    },
    Section {
        name: "public_keys",
        fields: &[("account", U64), ("key", Kind::Bytes32)],
    },
];

/// One field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Int(u128),
    Bytes([u8; 32]),
}

impl Field {
    fn int(self) -> Option<u128> {
        match self {
            Field::Int(x) => Some(x),
            Field::Bytes(_) => None,
        }
    }
}

/// The entry of section `s` from its field values in order (range-checked for their
/// kinds, so the narrowing casts are exact).
fn build(s: usize, v: &[Field]) -> Option<(Key, Value)> {
    let int = |i: usize| v.get(i).and_then(|f| f.int());
    let u64_ = |i: usize| int(i).map(|x| x as u64);
    let u32_ = |i: usize| int(i).map(|x| x as u32);
    Some(match s {
        0 => (Key::Balance(u64_(0)?, u32_(1)?), Value::Amount(int(2)?)),
        1 => (Key::Nonce(u64_(0)?), Value::Nonce(u64_(1)?)),
        2 => (
            Key::Pool(u32_(0)?),
            Value::Pool(Pool {
                token0: u32_(1)?,
                token1: u32_(2)?,
                reserve0: int(3)?,
                reserve1: int(4)?,
                lp_supply: int(5)?,
            }),
        ),
        3 => (Key::Lp(u32_(0)?, u64_(1)?), Value::Amount(int(2)?)),
        4 => (
            Key::Market(u32_(0)?),
            Value::Market(Market {
                token: u32_(1)?,
                collateral_factor_bps: int(2)? as u16,
                total_deposits: int(3)?,
                total_borrows: int(4)?,
            }),
        ),
        5 => (
            Key::Position(u32_(0)?, u64_(1)?),
            Value::Position(Position {
                deposit: int(2)?,
                borrow: int(3)?,
            }),
        ),
        6 => match v.get(1)? {
            Field::Bytes(k) => (Key::PublicKey(u64_(0)?), Value::PublicKey(*k)),
            Field::Int(_) => return None,
        },
        _ => return None,
    })
}

/// The section index and field values of an entry (the inverse of `build`).
fn parts(key: &Key, value: &Value) -> Option<(usize, Vec<Field>)> {
    use Field::Int;
    let (a, b) = (|x: u64| Int(u128::from(x)), |x: u32| Int(u128::from(x)));
    Some(match (*key, *value) {
        (Key::Balance(acc, t), Value::Amount(x)) => (0, vec![a(acc), b(t), Int(x)]),
        (Key::Nonce(acc), Value::Nonce(n)) => (1, vec![a(acc), a(n)]),
        (Key::Pool(p), Value::Pool(pool)) => (
            2,
            vec![
                b(p),
                b(pool.token0),
                b(pool.token1),
                Int(pool.reserve0),
                Int(pool.reserve1),
                Int(pool.lp_supply),
            ],
        ),
        (Key::Lp(p, acc), Value::Amount(x)) => (3, vec![b(p), a(acc), Int(x)]),
        (Key::Market(m), Value::Market(mk)) => (
            4,
            vec![
                b(m),
                b(mk.token),
                Int(u128::from(mk.collateral_factor_bps)),
                Int(mk.total_deposits),
                Int(mk.total_borrows),
            ],
        ),
        (Key::Position(m, acc), Value::Position(p)) => {
            (5, vec![b(m), a(acc), Int(p.deposit), Int(p.borrow)])
        }
        (Key::PublicKey(acc), Value::PublicKey(k)) => (6, vec![a(acc), Field::Bytes(k)]),
        _ => return None,
    })
}

/// Reads one entry of section `s`.
fn entry(s: usize, f: &Fields<'_>) -> Result<(Key, Value), Located> {
    let section = &SECTIONS[s];
    let names: Vec<&str> = section.fields.iter().map(|(n, _)| *n).collect();
    f.only(&names)?;
    let values = section
        .fields
        .iter()
        .map(|&(field, kind)| {
            Ok(match kind {
                Kind::Max(max) => Field::Int(f.unsigned(field, max)?),
                Kind::AmountOr0 => Field::Int(f.unsigned_or(field, u128::MAX, 0)?),
                Kind::Bytes32 => Field::Bytes(f.hex::<32>(field, "an Ed25519 public key")?),
            })
        })
        .collect::<Result<Vec<Field>, Located>>()?;
    let (key, value) = build(s, &values).ok_or_else(|| {
        Located::new(format!(
            "section `{}`: internal field mismatch",
            section.name
        ))
    })?;
    check_entry(&key, &value).map_err(|reason| match key {
        Key::PublicKey(_) => f.located("key", reason),
        _ => Located::new(reason.to_string()),
    })?;
    Ok((key, value))
}

/// `account 1, token 0`: an entry's key in the file's terms, for duplicate errors.
fn describe(key: &Key) -> String {
    match *key {
        Key::Balance(a, t) => format!("account {a}, token {t}"),
        Key::Nonce(a) | Key::PublicKey(a) => format!("account {a}"),
        Key::Pool(p) => format!("pool {p}"),
        Key::Lp(p, a) => format!("pool {p}, account {a}"),
        Key::Market(m) => format!("market {m}"),
        Key::Position(m, a) => format!("market {m}, account {a}"),
    }
}

/// Reads the sections of an explicit genesis; `section_items` splits a section's raw
/// value into its entries and `fail` turns an error at an entry into the caller's
/// error type.
fn entries_from<'a, E>(
    top: &Fields<'a>,
    mut items: impl FnMut(&str, &'a RawValue) -> Result<Vec<&'a RawValue>, E>,
    mut fail: impl FnMut(&'a RawValue, &str, Located) -> E,
    mut parse_fail: impl FnMut(&'a RawValue, &str, serde_json::Error) -> E,
) -> Result<Vec<(Key, Value)>, E> {
    let mut entries: Vec<(Key, Value)> = Vec::new();
    let mut seen: std::collections::BTreeMap<Key, String> = std::collections::BTreeMap::new();
    for (s, section) in SECTIONS.iter().enumerate() {
        let Ok(raw) = top.raw(section.name) else {
            continue;
        };
        for (i, item) in items(section.name, raw)?.into_iter().enumerate() {
            let place = format!("{}[{i}]", section.name);
            let object: RawObject<&RawValue> =
                serde_json::from_str(item.get()).map_err(|e| parse_fail(item, &place, e))?;
            let (key, value) =
                entry(s, &Fields::new(&object)).map_err(|e| fail(item, &place, e))?;
            if let Some(first) = seen.get(&key) {
                let message = format!(
                    "a second entry for {} (the first is {first})",
                    describe(&key)
                );
                return Err(fail(item, &place, Located::new(message)));
            }
            seen.insert(key, place);
            entries.push((key, value));
        }
    }
    Ok(entries)
}

impl Genesis {
    /// Reads a genesis file. Errors name the file, the section entry, its line and
    /// the field, e.g. `g.json: balances[1], line 3: a second entry for account 1,
    /// token 0 (the first is balances[0])`.
    pub fn read(file: &str, text: &str) -> Result<Genesis, Error> {
        let source = Source { file, text };
        let top: RawObject<&RawValue> = serde_json::from_str(text).map_err(|e| {
            if e.is_data() {
                source.error(format_args!(
                    "expected a JSON object of genesis sections: {e}"
                ))
            } else {
                source.error(format_args!("not valid JSON: {e}"))
            }
        })?;
        let top = Fields::new(&top);
        let mut names: Vec<&str> = vec!["workload"];
        names.extend(SECTIONS.iter().map(|s| s.name));
        top.only(&names).map_err(|e| source.error(e))?;
        if let Ok(raw) = top.raw("workload") {
            if names.iter().skip(1).any(|n| top.has(n)) {
                return Err(source.error("`workload` cannot be combined with explicit sections"));
            }
            let spec: WorkloadSpec = serde_json::from_str(raw.get())
                .map_err(|e| source.parse_error(raw, "workload", &e))?;
            return Ok(Genesis::Workload(spec));
        }
        let entries = entries_from(
            &top,
            |name, raw| {
                serde_json::from_str::<Vec<&RawValue>>(raw.get()).map_err(|_| {
                    source.error(format_args!(
                        "`{name}`, line {}: must be an array of entries",
                        source.line_of(raw)
                    ))
                })
            },
            |item, place, e| source.located(item, place, e),
            |item, place, e| source.parse_error(item, place, &e),
        )?;
        Ok(Genesis::Entries(entries))
    }

    /// The state this genesis describes.
    pub fn state(&self) -> Result<State, Error> {
        match self {
            Genesis::Workload(spec) => spec.genesis(),
            Genesis::Entries(entries) => State::from_entries(entries.iter().copied()),
        }
    }

    /// The explicit genesis of `state` (its entries in key order).
    pub fn from_state(state: &State) -> Genesis {
        Genesis::Entries(state.entries())
    }
}

impl Serialize for Genesis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self {
            Genesis::Workload(spec) => map.serialize_entry("workload", spec)?,
            Genesis::Entries(entries) => {
                for (s, section) in SECTIONS.iter().enumerate() {
                    let rows: Vec<Vec<Field>> = entries
                        .iter()
                        .filter_map(|(k, v)| parts(k, v))
                        .filter(|(i, _)| *i == s)
                        .map(|(_, f)| f)
                        .collect();
                    if !rows.is_empty() {
                        map.serialize_entry(section.name, &Rows { section, rows })?;
                    }
                }
            }
        }
        map.end()
    }
}

/// A section's entries for serialisation: ids as numbers, amounts as strings.
struct Rows<'a> {
    section: &'a Section,
    rows: Vec<Vec<Field>>,
}

impl Serialize for Rows<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Row<'a>(&'a Section, &'a [Field]);
        impl Serialize for Row<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.1.len()))?;
                for (&(name, kind), field) in self.0.fields.iter().zip(self.1) {
                    match (kind, field) {
                        (Kind::Max(max), Field::Int(x)) if max <= u128::from(u64::MAX) => {
                            map.serialize_entry(name, &(*x as u64))?
                        }
                        (_, Field::Int(x)) => map.serialize_entry(name, &x.to_string())?,
                        (_, Field::Bytes(b)) => map.serialize_entry(name, &to_hex(b))?,
                    }
                }
                map.end()
            }
        }
        let mut seq = serializer.serialize_seq(Some(self.rows.len()))?;
        for row in &self.rows {
            seq.serialize_element(&Row(self.section, row))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Genesis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let top = RawObject::<Box<RawValue>>::deserialize(deserializer)?;
        let top = Fields::new(&top);
        let mut names: Vec<&str> = vec!["workload"];
        names.extend(SECTIONS.iter().map(|s| s.name));
        top.only(&names).map_err(D::Error::custom)?;
        if let Ok(raw) = top.raw("workload") {
            if names.iter().skip(1).any(|n| top.has(n)) {
                return Err(D::Error::custom(
                    "`workload` cannot be combined with explicit sections",
                ));
            }
            let spec = serde_json::from_str(raw.get())
                .map_err(|e| D::Error::custom(format_args!("workload: {e}")))?;
            return Ok(Genesis::Workload(spec));
        }
        let entries = entries_from(
            &top,
            |name, raw| {
                serde_json::from_str::<Vec<&RawValue>>(raw.get()).map_err(|_| {
                    D::Error::custom(format_args!("`{name}` must be an array of entries"))
                })
            },
            |_, place, e| D::Error::custom(format_args!("{place}: {e}")),
            |_, place, e| D::Error::custom(format_args!("{place}: {e}")),
        )?;
        Ok(Genesis::Entries(entries))
    }
}
