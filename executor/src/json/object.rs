//! One JSON object read as `(key, raw value)` pairs, refusing duplicate keys, and the
//! typed field access that the transaction and genesis forms share. Every error names
//! the field and, through [`Located`], where its value starts.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::integer;
use crate::tx::from_hex;

/// A JSON object's members in file order; a key may appear only once.
pub(crate) struct RawObject<R> {
    pub(crate) members: Vec<(String, R)>,
}

impl<'de, R: Deserialize<'de>> Deserialize<'de> for RawObject<R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<R>(std::marker::PhantomData<R>);
        impl<'de, R: Deserialize<'de>> Visitor<'de> for Visit<R> {
            type Value = RawObject<R>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject<R>, A::Error> {
                let mut members: Vec<(String, R)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if members.iter().any(|(k, _)| *k == key) {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate key `{key}`"
                        )));
                    }
                    let value = map.next_value::<R>()?;
                    members.push((key, value));
                }
                Ok(RawObject { members })
            }
        }
        deserializer.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// An error about one value: the message, and the value's raw text (to locate it).
#[derive(Debug)]
pub(crate) struct Located {
    pub(crate) message: String,
    /// Address of the offending value's text, when it was borrowed from the file.
    pub(crate) at: Option<usize>,
}

impl Located {
    pub(crate) fn new(message: impl Into<String>) -> Located {
        Located {
            message: message.into(),
            at: None,
        }
    }

    fn at(raw: &RawValue, message: String) -> Located {
        Located {
            message,
            at: Some(raw.get().as_ptr() as usize),
        }
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Typed access to an object's members; `only` refuses keys outside a list.
pub(crate) struct Fields<'a> {
    members: Vec<(&'a str, &'a RawValue)>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new<R: std::ops::Deref<Target = RawValue>>(object: &'a RawObject<R>) -> Self {
        Fields {
            members: object
                .members
                .iter()
                .map(|(k, v)| (k.as_str(), &**v))
                .collect(),
        }
    }

    /// Refuses any key not in `allowed`.
    pub(crate) fn only(&self, allowed: &[&str]) -> Result<(), Located> {
        for (key, raw) in &self.members {
            if !allowed.contains(key) {
                return Err(Located::at(
                    raw,
                    format!("unknown field `{key}` (expected: {})", allowed.join(", ")),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn has(&self, field: &str) -> bool {
        self.members.iter().any(|(k, _)| *k == field)
    }

    pub(crate) fn raw(&self, field: &str) -> Result<&'a RawValue, Located> {
        self.members
            .iter()
            .find(|(k, _)| *k == field)
            .map(|(_, v)| *v)
            .ok_or_else(|| Located::new(format!("field `{field}`: missing")))
    }

    fn fail(raw: &RawValue, field: &str, message: impl fmt::Display) -> Located {
        Located::at(raw, format!("field `{field}`: {message}"))
    }

    /// An unsigned integer of at most `max`.
    pub(crate) fn unsigned(&self, field: &str, max: u128) -> Result<u128, Located> {
        let raw = self.raw(field)?;
        integer::unsigned(raw, max).map_err(|m| Self::fail(raw, field, m))
    }

    /// An unsigned integer of at most `max`, or `default` when the field is absent.
    pub(crate) fn unsigned_or(
        &self,
        field: &str,
        max: u128,
        default: u128,
    ) -> Result<u128, Located> {
        if self.has(field) {
            self.unsigned(field, max)
        } else {
            Ok(default)
        }
    }

    pub(crate) fn signed(&self, field: &str) -> Result<i128, Located> {
        let raw = self.raw(field)?;
        integer::signed(raw).map_err(|m| Self::fail(raw, field, m))
    }

    pub(crate) fn u64(&self, field: &str) -> Result<u64, Located> {
        // In range by the bound just checked.
        Ok(self.unsigned(field, u128::from(u64::MAX))? as u64)
    }

    pub(crate) fn string(&self, field: &str) -> Result<String, Located> {
        let raw = self.raw(field)?;
        serde_json::from_str::<String>(raw.get()).map_err(|_| {
            Self::fail(
                raw,
                field,
                format!("expected a string, got {}", integer::shown(raw)),
            )
        })
    }

    /// `N` bytes written as `2N` hex digits; `what` names them in the error.
    pub(crate) fn hex<const N: usize>(&self, field: &str, what: &str) -> Result<[u8; N], Located> {
        let raw = self.raw(field)?;
        serde_json::from_str::<String>(raw.get())
            .ok()
            .and_then(|s| from_hex::<N>(&s))
            .ok_or_else(|| {
                Self::fail(
                    raw,
                    field,
                    format!(
                        "expected {} hex digits ({what}), got {}",
                        2 * N,
                        integer::shown(raw)
                    ),
                )
            })
    }

    /// Wraps an error about `field` (already read) with the field's name and place.
    pub(crate) fn located(&self, field: &str, message: impl fmt::Display) -> Located {
        match self.raw(field) {
            Ok(raw) => Self::fail(raw, field, message),
            Err(_) => Located::new(format!("field `{field}`: {message}")),
        }
    }
}
