//! Resource quantities (`500m`, `1.5Gi`, `1e3`) as apimachinery's
//! `resource.Quantity` parses, compares and canonicalizes them. Kube
//! parses quantities while decoding (a bad one is a 400, not a 422) and
//! stores them canonical (`0.5` → `500m`, `1.5Gi` → `1536Mi`).
//!
//! Values are held exactly as a count of nano-units in an `i128`, rounded
//! up to the nano as apimachinery rounds; values beyond that range
//! saturate and are stored as written.

pub const FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
pub const SUFFIX_ERROR: &str = "unable to parse quantity's suffix";

const NANO: i128 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// A parsed quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    /// The value in units of 10^-9, saturated at the `i128` bounds.
    pub nanos: i128,
    overflow: bool,
    format: Format,
}

impl Quantity {
    fn zero() -> Quantity {
        Quantity {
            nanos: 0,
            overflow: false,
            format: Format::DecimalSI,
        }
    }

    /// The canonical text, or `None` when the value is out of exact range.
    pub fn canonical(&self) -> Option<String> {
        if self.overflow {
            return None;
        }
        Some(format_canonical(self.nanos, self.format))
    }
}

/// Parses as `resource.ParseQuantity` does (after trimming spaces, as its
/// JSON decoding does).
pub fn parse(s: &str) -> Result<Quantity, &'static str> {
    let s = s.trim();
    if s.is_empty() {
        return Err(FORMAT_ERROR);
    }
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b[0] {
        b'-' => {
            positive = false;
            pos += 1;
        }
        b'+' => pos += 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(Quantity::zero());
    }
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let num = &s[num_start..pos];
    let mut denom = "";
    if pos < end && b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[start..pos];
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end {
        if b[pos] == b'-' || b[pos] == b'+' {
            pos += 1;
        }
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos < end {
            return Err(FORMAT_ERROR);
        }
    }
    let suffix = &s[suffix_start..];
    let (base2, exponent, mut format) = interpret_suffix(suffix).ok_or(SUFFIX_ERROR)?;

    let (mut nanos, overflow) = to_nanos(num, denom, base2, exponent);
    if format == Format::BinarySI && nanos > 0 && nanos < NANO {
        format = Format::DecimalSI;
    }
    if !positive {
        nanos = -nanos;
    }
    Ok(Quantity {
        nanos,
        overflow,
        format,
    })
}

/// `(is base 2, exponent, format)`; for base 2 the exponent is of 2.
fn interpret_suffix(suffix: &str) -> Option<(bool, i64, Format)> {
    let dec = |e| Some((false, e, Format::DecimalSI));
    let bin = |e| Some((true, e, Format::BinarySI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            let e: i64 = s[1..].parse().ok()?;
            Some((false, e, Format::DecimalExponent))
        }
        _ => None,
    }
}

fn pow10(e: u32) -> Option<i128> {
    10i128.checked_pow(e)
}

/// `num.denom × 10^exp` (or `× 2^exp`) in nano-units, rounded up in
/// magnitude; `(value, overflowed)`.
fn to_nanos(num: &str, denom: &str, base2: bool, exponent: i64) -> (i128, bool) {
    const SATURATED: (i128, bool) = (i128::MAX, true);
    let digits = format!("{num}{denom}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return (0, false);
    }
    if digits.len() > 38 {
        return SATURATED;
    }
    let Ok(mut m) = digits.parse::<i128>() else {
        return SATURATED;
    };
    let mut e10: i64 = 9 - denom.len() as i64;
    if base2 {
        match m.checked_mul(1i128 << exponent.clamp(0, 60)) {
            Some(v) => m = v,
            None => return SATURATED,
        }
    } else {
        e10 += exponent;
    }
    if e10 >= 0 {
        let Ok(e) = u32::try_from(e10) else {
            return SATURATED;
        };
        match pow10(e).and_then(|p| m.checked_mul(p)) {
            Some(v) => (v, false),
            None => SATURATED,
        }
    } else {
        let e = u32::try_from(-e10).unwrap_or(u32::MAX);
        match pow10(e) {
            Some(p) => {
                let q = m / p;
                (if m % p != 0 { q + 1 } else { q }, false)
            }
            // Smaller than a nano: rounds up to one.
            None => (1, false),
        }
    }
}

fn format_canonical(nanos: i128, format: Format) -> String {
    if nanos == 0 {
        return "0".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let mag = nanos.unsigned_abs();
    let nano = NANO as u128;
    let format = match format {
        Format::BinarySI if mag < 1024 * nano || !mag.is_multiple_of(nano) => Format::DecimalSI,
        f => f,
    };
    if format == Format::BinarySI {
        let mut n = mag / nano;
        let mut k = 0;
        while k < 6 && n.is_multiple_of(1024) {
            n /= 1024;
            k += 1;
        }
        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][k];
        return format!("{sign}{n}{suffix}");
    }
    let mut m = mag;
    let mut e: i64 = -9;
    while m.is_multiple_of(10) {
        m /= 10;
        e += 1;
    }
    let r = e.rem_euclid(3);
    // r ≤ the number of factors removed, so this cannot overflow.
    m *= 10u128.pow(r as u32);
    e -= r;
    if format == Format::DecimalExponent {
        return if e == 0 {
            format!("{sign}{m}")
        } else {
            format!("{sign}{m}e{e}")
        };
    }
    let suffix = match e {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        _ => {
            // Above exa: fold the surplus into the mantissa.
            let extra = u32::try_from(e - 18).unwrap_or(u32::MAX);
            return match 10u128.checked_pow(extra).and_then(|p| m.checked_mul(p)) {
                Some(v) => format!("{sign}{v}E"),
                None => format!("{sign}{m}e{e}"),
            };
        }
    };
    format!("{sign}{m}{suffix}")
}

/// The canonical form of `s`, as kube-apiserver stores it; values out of
/// exact range are kept as written (trimmed).
pub fn canonicalize(s: &str) -> Result<String, &'static str> {
    let q = parse(s)?;
    Ok(q.canonical().unwrap_or_else(|| s.trim().to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        canonicalize(s).unwrap()
    }

    #[test]
    fn canonical_forms_match_apimachinery() {
        for (input, want) in [
            ("0", "0"),
            ("0.0", "0"),
            ("-0", "0"),
            ("100m", "100m"),
            ("0.1", "100m"),
            ("0.5", "500m"),
            ("1", "1"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("1000m", "1"),
            ("128Mi", "128Mi"),
            ("1Gi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("1000Mi", "1000Mi"),
            ("1024Mi", "1Gi"),
            ("1024", "1024"),
            ("2048", "2048"),
            ("1024Ki", "1Mi"),
            ("0.5Ki", "512"),
            ("1e3", "1e3"),
            ("1E3", "1e3"),
            ("1e-3", "1e-3"),
            ("1G", "1G"),
            ("1000M", "1G"),
            ("12345", "12345"),
            ("1n", "1n"),
            ("0.0000000001", "1n"),
            ("1.1n", "2n"),
            ("-100m", "-100m"),
            ("+5", "5"),
            (" 2 ", "2"),
            ("1.", "1"),
            (".5", "500m"),
            ("1E", "1E"),
            ("5000E", "5000E"),
        ] {
            assert_eq!(canon(input), want, "canonical form of {input:?}");
        }
    }

    #[test]
    fn malformed_quantities() {
        for bad in ["", "abc", "1.5.5", "1Zi", "--1", "1 Gi", "1e", "1e1.5"] {
            assert!(parse(bad).is_err(), "{bad:?} must not parse");
        }
        assert_eq!(parse("abc"), Err(FORMAT_ERROR));
        assert_eq!(parse("1Ki5"), Err(SUFFIX_ERROR));
        assert_eq!(parse("1e99999999999999999999"), Err(SUFFIX_ERROR));
    }

    #[test]
    fn comparisons_are_exact() {
        assert_eq!(parse("100m").unwrap().nanos, parse("0.1").unwrap().nanos);
        assert_eq!(
            parse("1Gi").unwrap().nanos,
            parse("1073741824").unwrap().nanos
        );
        assert!(parse("2").unwrap().nanos > parse("1500m").unwrap().nanos);
    }

    #[test]
    fn huge_values_saturate_without_panicking() {
        for s in [
            "99999999999999999999999999999999999999999999",
            "1e400",
            "9Ei",
            "999999999999999999999999999Ei",
            "1e-400",
            "-1e400",
        ] {
            let q = parse(s).unwrap();
            let _ = q.canonical();
            let _ = canonicalize(s).unwrap();
        }
        assert_eq!(canon("1e400"), "1e400");
        // Rounded up to the nano, in the exponent format it was written in.
        assert_eq!(canon("1e-400"), "1e-9");
        assert_eq!(canon("0.0000000001m"), "1n");
    }
}
