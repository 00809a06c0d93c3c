//! Exact integers in JSON files: a JSON integer literal or a decimal string, read
//! from the value's own text (serde_json's `RawValue`), so numbers above 2^64 — up to
//! `u128::MAX` and down to `i128::MIN` — are exact and an error quotes the value as
//! the user wrote it (never a float the user did not type).
//!
//! Why raw text rather than serde_json's `arbitrary_precision` feature: that feature
//! changes `serde_json::Number` for every crate in the build (features unify), and
//! numbers buffered by `#[serde(untagged)]`, `flatten` or internally tagged enums then
//! arrive as maps and fail to deserialize; `raw_value` only adds a type.

use serde_json::value::RawValue;

/// A shortened rendering of a raw JSON value for error messages (as written).
pub(crate) fn shown(raw: &RawValue) -> String {
    let s = raw.get();
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(40).collect();
        format!("{cut}…")
    } else {
        s.to_string()
    }
}

/// The sign and decimal digits of `raw` if it is a JSON integer literal or a string of
/// an optional `-` and ASCII digits; `None` for anything else (fractions, exponents,
/// other types, empty strings, `+`, spaces).
fn decimal(raw: &RawValue) -> Option<(bool, String)> {
    let text = raw.get();
    let body = if text.starts_with('"') {
        serde_json::from_str::<String>(text).ok()?
    } else {
        text.to_string()
    };
    let (negative, digits) = match body.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, body),
    };
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some((negative, digits))
}

/// Reads an unsigned integer no larger than `max`.
pub(crate) fn unsigned(raw: &RawValue, max: u128) -> Result<u128, String> {
    let not_unsigned = || {
        format!(
            "expected an unsigned integer (a JSON number or a decimal string), got {}",
            shown(raw)
        )
    };
    let (negative, digits) = decimal(raw).ok_or_else(not_unsigned)?;
    // `-0` is zero; any other negative number is refused.
    if negative && digits.bytes().any(|b| b != b'0') {
        return Err(not_unsigned());
    }
    match digits.parse::<u128>() {
        Ok(x) if x <= max => Ok(x),
        _ => Err(format!("{} is above the maximum {max}", shown(raw))),
    }
}

/// Reads a signed 128-bit integer.
pub(crate) fn signed(raw: &RawValue) -> Result<i128, String> {
    let (negative, digits) = decimal(raw).ok_or_else(|| {
        format!(
            "expected an integer (a JSON number or a decimal string), got {}",
            shown(raw)
        )
    })?;
    let text = if negative {
        format!("-{digits}")
    } else {
        digits
    };
    text.parse::<i128>().map_err(|_| {
        format!(
            "{} is outside the range {}..={}",
            shown(raw),
            i128::MIN,
            i128::MAX
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn numbers_and_strings_are_exact_up_to_the_maximum() {
        let max = u128::MAX.to_string();
        assert_eq!(unsigned(&raw(&max), u128::MAX), Ok(u128::MAX));
        assert_eq!(
            unsigned(&raw(&format!("\"{max}\"")), u128::MAX),
            Ok(u128::MAX)
        );
        // Just above u64::MAX, where a float reader would round.
        assert_eq!(
            unsigned(&raw("18446744073709551617"), u128::MAX),
            Ok(u128::from(u64::MAX) + 2)
        );
        assert_eq!(unsigned(&raw("0"), 5), Ok(0));
        assert_eq!(unsigned(&raw("-0"), 5), Ok(0));
        assert_eq!(signed(&raw(&i128::MIN.to_string())), Ok(i128::MIN));
        assert_eq!(signed(&raw(&format!("\"{}\"", i128::MAX))), Ok(i128::MAX));
        assert_eq!(signed(&raw("-5")), Ok(-5));
    }

    #[test]
    fn errors_quote_the_text_as_written() {
        let above = "340282366920938463463374607431768211456";
        assert_eq!(
            unsigned(&raw(above), u128::MAX).unwrap_err(),
            format!("{above} is above the maximum {}", u128::MAX)
        );
        assert_eq!(
            unsigned(&raw("18446744073709551616"), u128::from(u64::MAX)).unwrap_err(),
            "18446744073709551616 is above the maximum 18446744073709551615"
        );
        for bad in [
            "1.5", "1e3", "\"12x\"", "\"\"", "\"+1\"", "\" 1\"", "true", "null", "-5", "[1]",
        ] {
            let err = unsigned(&raw(bad), u128::MAX).unwrap_err();
            assert!(err.ends_with(&format!("got {bad}")), "{bad}: {err}");
        }
        let below = "-170141183460469231731687303715884105729";
        assert!(signed(&raw(below)).unwrap_err().starts_with(below));
        assert!(signed(&raw("2.0")).unwrap_err().ends_with("got 2.0"));
        let long = format!("\"{}\"", "9".repeat(60));
        assert!(unsigned(&raw(&long), u128::MAX).unwrap_err().contains('…'));
    }
}
