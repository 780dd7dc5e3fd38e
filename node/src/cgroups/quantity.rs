//! Kubernetes resource quantities (`"100m"`, `"0.5"`, `"64Mi"`, `"1G"`,
//! `"1e3"`) as exact numbers, for the cgroup arithmetic of
//! [`super::resources`].
//!
//! k8s-openapi's `Quantity` is the API's string; this module is the one
//! place that reads it, with apimachinery's grammar
//! (`k8s.io/apimachinery/pkg/api/resource`):
//!
//! ```text
//! <quantity>        ::= <signedNumber><suffix>
//! <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
//! <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
//! <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
//! <decimalExponent> ::= "e" <signedInteger> | "E" <signedInteger>
//! <signedNumber>    ::= [+-] (<digits> | <digits>. | .<digits> | <digits>.<digits>)
//! ```
//!
//! A value is held exactly in nano-units (an `i128`, so up to about 10²⁰
//! Ei); digits finer than a nano round up, as apimachinery rounds them.
//! Conversions to milli-units and units round up too (apimachinery's
//! `MilliValue()` and `Value()`). Bad input is an error naming the input,
//! never a panic.

use std::{cmp::Ordering, fmt};

use thiserror::Error;

/// Why a quantity string was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid quantity {input:?}: {reason}")]
pub struct QuantityError {
    pub input: String,
    pub reason: QuantityErrorReason,
}

/// The part of a quantity that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuantityErrorReason {
    #[error("empty string")]
    Empty,
    #[error("no digits in the number")]
    NoDigits,
    #[error("unknown suffix {0:?} (expected n, u, m, k, M, G, T, P, E, Ki … Ei, or e<exponent>)")]
    Suffix(String),
    #[error("out of range")]
    OutOfRange,
}

/// Nano-units per unit.
const NANOS: i128 = 1_000_000_000;
/// Largest decimal exponent considered (beyond it every nonzero value is
/// out of range, or rounds to ±1 nano for negative exponents).
const MAX_EXPONENT: i64 = 60;
/// Mantissas stay below this (36 significant digits).
const MANTISSA_LIMIT: i128 = 1_000_000_000_000_000_000_000_000_000_000_000_000;

/// A parsed quantity: `nanos × 10⁻⁹` exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quantity {
    nanos: i128,
}

impl Quantity {
    /// Zero.
    pub const ZERO: Quantity = Quantity { nanos: 0 };

    /// Parses a quantity string.
    pub fn parse(input: &str) -> Result<Self, QuantityError> {
        parse(input).map_err(|reason| QuantityError {
            input: input.to_owned(),
            reason,
        })
    }

    /// A whole number of units.
    pub fn from_units(units: i64) -> Self {
        Quantity {
            nanos: i128::from(units) * NANOS,
        }
    }

    /// A whole number of milli-units.
    pub fn from_millis(millis: i64) -> Self {
        Quantity {
            nanos: i128::from(millis) * 1_000_000,
        }
    }

    pub fn is_zero(self) -> bool {
        self.nanos == 0
    }

    pub fn is_negative(self) -> bool {
        self.nanos < 0
    }

    /// The sum; `None` if it leaves the representable range.
    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        self.nanos
            .checked_add(other.nanos)
            .map(|nanos| Quantity { nanos })
    }

    /// Milli-units, rounded up (away from zero) like apimachinery's
    /// `MilliValue()`; `None` beyond `i64`.
    pub fn milli_value(self) -> Option<i64> {
        i64::try_from(div_away_from_zero(self.nanos, 1_000_000)).ok()
    }

    /// Units, rounded up (away from zero) like apimachinery's `Value()`;
    /// `None` beyond `i64`.
    pub fn value(self) -> Option<i64> {
        i64::try_from(div_away_from_zero(self.nanos, NANOS)).ok()
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl fmt::Display for Quantity {
    /// Units with up to nine decimals (`1.5`, `0.1`, `64`), not the
    /// API's canonical form; for logs and errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        let (whole, frac) = (abs / NANOS as u128, abs % NANOS as u128);
        if frac == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let digits = format!("{frac:09}");
            write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

/// `n / d` with the remainder rounding the magnitude up (`d > 0`).
fn div_away_from_zero(n: i128, d: i128) -> i128 {
    let q = n / d;
    match (n % d).cmp(&0) {
        Ordering::Greater => q + 1,
        Ordering::Less => q - 1,
        Ordering::Equal => q,
    }
}

fn parse(input: &str) -> Result<Quantity, QuantityErrorReason> {
    use QuantityErrorReason::*;
    if input.is_empty() {
        return Err(Empty);
    }
    let bytes = input.as_bytes();
    let mut pos = 0;
    let negative = match bytes.first() {
        Some(b'-') => {
            pos += 1;
            true
        }
        Some(b'+') => {
            pos += 1;
            false
        }
        _ => false,
    };
    // The number: digits, an optional point, digits. All digits go into
    // one integer; `frac_digits` says where the point was.
    let mut digits: i128 = 0;
    let mut digit_count = 0usize;
    let mut frac_digits: i64 = 0;
    let mut seen_point = false;
    // Digits past what the mantissa holds (36 significant ones) are
    // dropped: those before the point still count as scale, and whether
    // any of them was nonzero decides the rounding.
    let mut dropped_nonzero = false;
    let mut extra_int_digits: i64 = 0;
    while let Some(&b) = bytes.get(pos) {
        match b {
            b'0'..=b'9' => {
                digit_count += 1;
                let d = i128::from(b - b'0');
                if digits < MANTISSA_LIMIT / 10 {
                    digits = digits * 10 + d;
                    if seen_point {
                        frac_digits += 1;
                    }
                } else {
                    dropped_nonzero |= d != 0;
                    if !seen_point {
                        extra_int_digits += 1;
                    }
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        pos += 1;
    }
    if digit_count == 0 {
        return Err(NoDigits);
    }
    let suffix = &input[pos..];
    let (exp10, binary_shift) = parse_suffix(suffix).ok_or_else(|| Suffix(suffix.to_owned()))?;
    // value = digits × 10^(extra_int_digits − frac_digits + exp10) × 2^binary_shift
    // nanos = value × 10^9
    let mut magnitude = digits;
    if binary_shift > 0 {
        magnitude = magnitude
            .checked_mul(1i128 << binary_shift)
            .ok_or(OutOfRange)?;
    }
    let exponent = extra_int_digits - frac_digits + exp10 + 9;
    let nanos = scale_up(magnitude, exponent, dropped_nonzero).ok_or(OutOfRange)?;
    Ok(Quantity {
        nanos: if negative { -nanos } else { nanos },
    })
}

/// `(magnitude + δ) × 10^exponent` with `0 ≤ δ < 1` (`δ > 0` when
/// `dropped_nonzero`), rounding a fractional result up (the magnitude is
/// non-negative); `None` when it does not fit or would lose a digit that
/// counts.
fn scale_up(magnitude: i128, exponent: i64, dropped_nonzero: bool) -> Option<i128> {
    if magnitude == 0 && !dropped_nonzero {
        return Some(0);
    }
    if exponent >= 0 {
        // Dropped digits would weigh at least one nano: not representable.
        if exponent > MAX_EXPONENT || dropped_nonzero {
            return None;
        }
        let factor = 10i128.checked_pow(u32::try_from(exponent).ok()?)?;
        magnitude.checked_mul(factor)
    } else {
        let shift = exponent.unsigned_abs();
        if shift > 38 {
            // 10^39 > i128::MAX > magnitude: less than one nano, rounds up.
            return Some(1);
        }
        let divisor = 10i128.checked_pow(u32::try_from(shift).ok()?)?;
        let q = magnitude / divisor;
        Some(if magnitude % divisor != 0 || dropped_nonzero {
            q + 1
        } else {
            q
        })
    }
}

/// A suffix's (decimal exponent, binary shift).
fn parse_suffix(suffix: &str) -> Option<(i64, u32)> {
    Some(match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            let (negative, digits) = match rest.as_bytes().first()? {
                b'-' => (true, &rest[1..]),
                b'+' => (false, &rest[1..]),
                _ => (false, rest),
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Long exponents saturate: they are out of range (or round to
            // a nano) either way.
            let value: i64 = digits.parse().unwrap_or(i64::MAX / 4).min(1_000);
            (if negative { -value } else { value }, 0)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn reason(s: &str) -> QuantityErrorReason {
        Quantity::parse(s).unwrap_err().reason
    }

    #[test]
    fn decimal_and_binary_suffixes() {
        assert_eq!(q("100m").milli_value(), Some(100));
        assert_eq!(q("0.5").milli_value(), Some(500));
        assert_eq!(q(".5").milli_value(), Some(500));
        assert_eq!(q("5.").value(), Some(5));
        assert_eq!(q("2").milli_value(), Some(2000));
        assert_eq!(q("64Mi").value(), Some(64 << 20));
        assert_eq!(q("1Ki").value(), Some(1024));
        assert_eq!(q("1.5Gi").value(), Some(3 << 29));
        assert_eq!(q("1Ei").value(), Some(1 << 60));
        assert_eq!(q("1G").value(), Some(1_000_000_000));
        assert_eq!(q("1k").value(), Some(1000));
        assert_eq!(q("3M").value(), Some(3_000_000));
        assert_eq!(q("2T").value(), Some(2_000_000_000_000));
        assert_eq!(q("1P").value(), Some(10i64.pow(15)));
        assert_eq!(q("1E").value(), Some(10i64.pow(18)));
        assert_eq!(q("250u").milli_value(), Some(1), "0.25m rounds up");
        assert_eq!(q("1n").milli_value(), Some(1));
        assert_eq!(q("+7").value(), Some(7));
        assert_eq!(q("-7").value(), Some(-7));
        assert_eq!(q("0").value(), Some(0));
        assert_eq!(q("0Mi"), Quantity::ZERO);
    }

    #[test]
    fn exponents() {
        assert_eq!(q("1e3").value(), Some(1000));
        assert_eq!(q("1E3").value(), Some(1000));
        assert_eq!(q("1.5e3").value(), Some(1500));
        assert_eq!(q("1e+3").value(), Some(1000));
        assert_eq!(q("5e-1").milli_value(), Some(500));
        assert_eq!(q("1e-3").milli_value(), Some(1));
        assert_eq!(q("1e0"), q("1"));
        // Below a nano rounds up to a nano.
        assert_eq!(q("1e-20"), q("1n"));
        assert_eq!(q("1e-5000"), q("1n"));
        assert_eq!(q("0e-5000"), Quantity::ZERO);
    }

    #[test]
    fn rounding_up_like_apimachinery() {
        // MilliValue() and Value() round up, away from zero.
        assert_eq!(q("0.1m").milli_value(), Some(1));
        assert_eq!(q("1.0001").value(), Some(2));
        assert_eq!(q("1.5").value(), Some(2));
        assert_eq!(q("-1.5").value(), Some(-2));
        assert_eq!(q("100.5m").milli_value(), Some(101));
        // Finer than a nano rounds up to the next nano.
        assert_eq!(q("0.0000000001"), q("1n"));
        assert_eq!(q("1.0000000001"), q("1.000000001"));
    }

    #[test]
    fn long_mantissas() {
        // More digits than the mantissa keeps: exact while they are zeros
        // or below a nano, an error when they would be lost.
        let forty_zeros = "0".repeat(40);
        assert_eq!(q(&format!("1{forty_zeros}e-40")), q("1"));
        assert_eq!(q(&format!("0.{forty_zeros}1")), q("1n"));
        assert_eq!(
            q(&format!("1.{}1", "0".repeat(38))),
            q("1.000000001"),
            "sub-nano digits round up"
        );
        assert_eq!(
            reason(&format!("1{}1", "0".repeat(40))),
            QuantityErrorReason::OutOfRange
        );
        assert_eq!(q(&format!("{}1", "0".repeat(60))), q("1"));
    }

    #[test]
    fn equal_values_compare_equal_whatever_the_notation() {
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("1"), q("1e0"));
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("0.5"), q("500m"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("999m") < q("1"));
        assert_eq!(q("1").checked_add(q("500m")), Some(q("1.5")));
        assert_eq!(Quantity::from_millis(250), q("250m"));
        assert_eq!(Quantity::from_units(3), q("3"));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(reason(""), QuantityErrorReason::Empty);
        assert_eq!(reason("m"), QuantityErrorReason::NoDigits);
        assert_eq!(reason("-"), QuantityErrorReason::NoDigits);
        assert_eq!(reason("."), QuantityErrorReason::NoDigits);
        assert_eq!(reason("1K"), QuantityErrorReason::Suffix("K".into()));
        assert_eq!(reason("1mi"), QuantityErrorReason::Suffix("mi".into()));
        assert_eq!(reason("1 Mi"), QuantityErrorReason::Suffix(" Mi".into()));
        assert_eq!(reason(" 1"), QuantityErrorReason::NoDigits);
        assert_eq!(reason("1e"), QuantityErrorReason::Suffix("e".into()));
        assert_eq!(reason("1e+"), QuantityErrorReason::Suffix("e+".into()));
        assert_eq!(reason("1e1.5"), QuantityErrorReason::Suffix("e1.5".into()));
        assert_eq!(reason("1.2.3"), QuantityErrorReason::Suffix(".3".into()));
        assert_eq!(reason("abc"), QuantityErrorReason::NoDigits);
        assert_eq!(reason("1e100"), QuantityErrorReason::OutOfRange);
        assert_eq!(
            reason("1e99999999999999999999"),
            QuantityErrorReason::OutOfRange
        );
        assert_eq!(
            reason("99999999999999999999999999999999999999999999Ei"),
            QuantityErrorReason::OutOfRange
        );
        let e = Quantity::parse("12x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid quantity \"12x\": unknown suffix \"x\" (expected n, u, m, k, M, G, T, P, E, Ki … Ei, or e<exponent>)"
        );
        // Values beyond i64 parse but do not convert.
        assert_eq!(q("100E").value(), None);
        assert_eq!(q("9E").value(), Some(9 * 10i64.pow(18)));
    }

    #[test]
    fn display_is_plain_units() {
        assert_eq!(q("1500m").to_string(), "1.5");
        assert_eq!(q("64Mi").to_string(), "67108864");
        assert_eq!(q("-250m").to_string(), "-0.25");
        assert_eq!(q("1n").to_string(), "0.000000001");
    }
}
