//! Durations (`"5ms"`), sizes (`"16MB"`), bandwidths (`"1Gbit"`) and rates (`"2000/s"`), written
//! the way `postgresql.conf` writes them.

use super::diag::closest;

/// Why a unit string was rejected, and what to write instead.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct UnitError {
    pub message: String,
    pub help: String,
}

fn unit_error(message: impl Into<String>, help: impl Into<String>) -> UnitError {
    UnitError { message: message.into(), help: help.into() }
}

const NS_PER_US: u128 = 1_000;
const NS_PER_MS: u128 = 1_000_000;
const NS_PER_S: u128 = 1_000_000_000;

const DURATION_UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", NS_PER_US),
    ("ms", NS_PER_MS),
    ("s", NS_PER_S),
    ("min", 60 * NS_PER_S),
    ("m", 60 * NS_PER_S),
    ("h", 3600 * NS_PER_S),
];

/// Common spellings that are not units here, and the unit meant.
const DURATION_ALIASES: &[(&str, &str)] = &[
    ("sec", "s"),
    ("secs", "s"),
    ("second", "s"),
    ("seconds", "s"),
    ("msec", "ms"),
    ("msecs", "ms"),
    ("millis", "ms"),
    ("usec", "us"),
    ("µs", "us"),
    ("μs", "us"),
    ("nsec", "ns"),
    ("mins", "min"),
    ("minute", "min"),
    ("minutes", "min"),
    ("hour", "h"),
    ("hours", "h"),
    ("hr", "h"),
    ("d", "h"),
];

pub(crate) const DURATION_HELP: &str =
    "a duration is a number with a unit, no space: ns, us, ms, s, min (or m), h; e.g. \"5ms\", \"1.5s\"";

const KIB: u128 = 1024;
const SIZE_UNITS: &[(&str, u128)] =
    &[("B", 1), ("kB", KIB), ("KB", KIB), ("MB", KIB * KIB), ("GB", KIB * KIB * KIB), ("TB", KIB * KIB * KIB * KIB)];

pub(crate) const SIZE_HELP: &str =
    "a size is a number with a unit, no space: B, kB, MB, GB, TB (powers of 1024, as in PostgreSQL); e.g. \"16MB\"";

/// Bits per second units (powers of 1000, as networks are measured); the value is bits.
const BIT_UNITS: &[(&str, u128)] =
    &[("bit", 1), ("kbit", 1_000), ("Mbit", 1_000_000), ("Gbit", 1_000_000_000), ("Tbit", 1_000_000_000_000)];

pub(crate) const BANDWIDTH_HELP: &str =
    "a bandwidth is a number with a unit, no space: bit, kbit, Mbit, Gbit (bits/s) or B, kB, MB, GB (bytes/s); e.g. \"1Gbit\", \"500MB\"";

pub(crate) const RATE_HELP: &str = "a rate is a number of operations per second or minute; e.g. \"2000/s\", \"50/min\"";

/// A decimal number as written: `[-]digits[.digits]`, kept exact.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Decimal {
    negative: bool,
    /// All digits, the decimal point removed.
    mantissa: u128,
    /// Digits after the decimal point.
    scale: u32,
}

impl Decimal {
    /// `self * factor`, rounded to the nearest integer (half away from zero), as a magnitude.
    fn times(self, factor: u128) -> Option<u128> {
        let divisor = 10u128.checked_pow(self.scale)?;
        let product = self.mantissa.checked_mul(factor)?;
        Some(product / divisor + u128::from(product % divisor >= divisor - divisor / 2))
    }

    fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    fn as_f64(self) -> f64 {
        let magnitude = self.mantissa as f64 / 10f64.powi(self.scale as i32);
        if self.negative {
            -magnitude
        } else {
            magnitude
        }
    }
}

/// Splits `"-1.5ms"` into the number and the rest (`"ms"`).
fn split_number(text: &str) -> Option<(Decimal, &str)> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let int_len = unsigned.chars().take_while(char::is_ascii_digit).count();
    let after_int = &unsigned[int_len..];
    let frac = after_int.strip_prefix('.').unwrap_or("");
    let frac_len = frac.chars().take_while(char::is_ascii_digit).count();
    let has_point = after_int.starts_with('.') && frac_len > 0;
    if int_len == 0 && !has_point {
        return None;
    }
    let number_len = if has_point { int_len + 1 + frac_len } else { int_len };
    let digits: String = unsigned[..number_len].chars().filter(char::is_ascii_digit).collect();
    let mantissa = digits.parse::<u128>().ok()?;
    let scale = if has_point { u32::try_from(frac_len).ok()? } else { 0 };
    Some((Decimal { negative, mantissa, scale }, &unsigned[number_len..]))
}

/// `"<number><unit>"` taken apart: the number, the number as written, the unit.
struct Parts<'a> {
    number: Decimal,
    digits: &'a str,
    unit: &'a str,
}

/// Shared checks on `"<number><unit>"`.
fn number_and_unit<'a>(text: &'a str, kind: &str, example: &str, help: &str) -> Result<Parts<'a>, UnitError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(unit_error(format!("empty {kind}"), format!("write e.g. \"{example}\"; {help}")));
    }
    let Some((number, unit)) = split_number(trimmed) else {
        return Err(unit_error(
            format!("`{text}` is not a {kind}: it must start with a number"),
            format!("write e.g. \"{example}\"; {help}"),
        ));
    };
    if unit.starts_with(char::is_whitespace) {
        let compact = format!("{}{}", &trimmed[..trimmed.len() - unit.len()], unit.trim_start());
        return Err(unit_error(
            format!("no space is allowed between the number and the unit in `{text}`"),
            format!("write \"{compact}\""),
        ));
    }
    let digits = &trimmed[..trimmed.len() - unit.len()];
    Ok(Parts { number, digits, unit })
}

fn lookup(unit: &str, table: &[(&str, u128)]) -> Option<u128> {
    table.iter().find(|(name, _)| *name == unit).map(|(_, factor)| *factor)
}

/// A duration that may be negative (only `clock_offset` allows it), in nanoseconds.
pub(crate) fn parse_signed_duration_ns(text: &str) -> Result<i64, UnitError> {
    let parts = number_and_unit(text, "duration", "5ms", DURATION_HELP)?;
    let factor = duration_unit_ns(text, &parts)?;
    let magnitude = parts.number.times(factor).and_then(|ns| i64::try_from(ns).ok()).ok_or_else(|| {
        unit_error(format!("duration `{text}` is too large"), "the largest duration is about 292 years")
    })?;
    Ok(if parts.number.negative { -magnitude } else { magnitude })
}

/// A duration in nanoseconds; negative values are rejected.
pub(crate) fn parse_duration_ns(text: &str) -> Result<u64, UnitError> {
    let ns = parse_signed_duration_ns(text)?;
    u64::try_from(ns).map_err(|_| {
        unit_error(
            format!("durations cannot be negative: `{text}`"),
            format!("write a duration of zero or more, e.g. \"{}\"", text.trim().trim_start_matches('-')),
        )
    })
}

fn duration_unit_ns(text: &str, parts: &Parts) -> Result<u128, UnitError> {
    let Parts { number, digits, unit } = parts;
    if unit.is_empty() {
        if number.is_zero() {
            return Ok(1);
        }
        return Err(unit_error(
            format!("duration `{text}` has no unit"),
            format!("write \"{digits}ms\" or \"{digits}s\"; {DURATION_HELP}"),
        ));
    }
    lookup(unit, DURATION_UNITS).ok_or_else(|| {
        let meant = DURATION_ALIASES
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(unit))
            .map(|(_, meant)| *meant)
            .or_else(|| closest(unit, DURATION_UNITS.iter().map(|(name, _)| *name)));
        unknown_unit(text, parts, "duration", meant, DURATION_HELP)
    })
}

fn unknown_unit(text: &str, parts: &Parts, kind: &str, meant: Option<&str>, help: &str) -> UnitError {
    let suggestion = meant.map_or(String::new(), |meant| format!("write \"{}{meant}\"; ", parts.digits));
    unit_error(format!("unknown {kind} unit `{}` in `{text}`", parts.unit), format!("{suggestion}{help}"))
}

/// A size in bytes (`"16MB"`; `"0"` alone is allowed).
pub(crate) fn parse_size_bytes(text: &str) -> Result<u64, UnitError> {
    let parts = number_and_unit(text, "size", "16MB", SIZE_HELP)?;
    if parts.number.negative && !parts.number.is_zero() {
        return Err(unit_error(format!("sizes cannot be negative: `{text}`"), SIZE_HELP));
    }
    let factor = size_unit_bytes(text, &parts)?;
    to_u64(parts.number.times(factor), text)
}

fn size_unit_bytes(text: &str, parts: &Parts) -> Result<u128, UnitError> {
    let Parts { number, digits, unit } = parts;
    if unit.is_empty() {
        if number.is_zero() {
            return Ok(1);
        }
        return Err(unit_error(
            format!("size `{text}` has no unit"),
            format!("write \"{digits}MB\" or \"{digits}B\"; {SIZE_HELP}"),
        ));
    }
    lookup(unit, SIZE_UNITS).ok_or_else(|| {
        let with_b = format!("{unit}B");
        let meant = SIZE_UNITS
            .iter()
            .map(|(name, _)| *name)
            .find(|name| name.eq_ignore_ascii_case(unit) || name.eq_ignore_ascii_case(&with_b));
        unknown_unit(text, parts, "size", meant, SIZE_HELP)
    })
}

fn to_u64(value: Option<u128>, text: &str) -> Result<u64, UnitError> {
    value
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| unit_error(format!("`{text}` is too large"), "use a smaller value"))
}

/// A bandwidth in bytes per second: `"1Gbit"` (bits/s, powers of 1000) or `"500MB"` (bytes/s,
/// powers of 1024); a trailing `/s` is allowed.
pub(crate) fn parse_bandwidth_bytes_per_sec(text: &str) -> Result<u64, UnitError> {
    let mut parts = number_and_unit(text, "bandwidth", "1Gbit", BANDWIDTH_HELP)?;
    if parts.number.negative && !parts.number.is_zero() {
        return Err(unit_error(format!("a bandwidth cannot be negative: `{text}`"), BANDWIDTH_HELP));
    }
    parts.unit = parts.unit.strip_suffix("/s").unwrap_or(parts.unit);
    if let Some(bits) = lookup(parts.unit, BIT_UNITS) {
        return to_u64(parts.number.times(bits).map(|b| b / 8 + u128::from(b % 8 >= 4)), text);
    }
    if let Some(bytes) = lookup(parts.unit, SIZE_UNITS) {
        return to_u64(parts.number.times(bytes), text);
    }
    if parts.unit.is_empty() {
        let digits = parts.digits;
        return Err(unit_error(
            format!("bandwidth `{text}` has no unit"),
            format!("write \"{digits}Mbit\" or \"{digits}MB\"; {BANDWIDTH_HELP}"),
        ));
    }
    let all_units = BIT_UNITS.iter().chain(SIZE_UNITS).map(|(name, _)| *name);
    let meant =
        all_units.clone().find(|name| name.eq_ignore_ascii_case(parts.unit)).or_else(|| closest(parts.unit, all_units));
    Err(unknown_unit(text, &parts, "bandwidth", meant, BANDWIDTH_HELP))
}

/// An operation rate: `"2000/s"` or `"50/min"`, in operations per second.
pub(crate) fn parse_rate_per_sec(text: &str) -> Result<f64, UnitError> {
    let parts = number_and_unit(text, "rate", "2000/s", RATE_HELP)?;
    let per_sec = match parts.unit {
        "/s" => parts.number.as_f64(),
        "/min" => parts.number.as_f64() / 60.0,
        "" => {
            return Err(unit_error(
                format!("rate `{text}` has no unit"),
                format!("write \"{}/s\"; {RATE_HELP}", parts.digits),
            ))
        }
        unit => return Err(unit_error(format!("unknown rate unit `{unit}` in `{text}`"), RATE_HELP)),
    };
    if per_sec <= 0.0 || !per_sec.is_finite() {
        return Err(unit_error(format!("a rate must be above zero: `{text}`"), RATE_HELP));
    }
    Ok(per_sec)
}

/// Formats nanoseconds for messages: `1500000` → `"1.5ms"`.
pub(crate) fn format_duration_ns(ns: u64) -> String {
    let units: [(&str, u64); 4] = [("h", 3_600_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)];
    for (name, per) in units {
        if ns >= per && ns.checked_rem(per / 1000) == Some(0) {
            let value = ns as f64 / per as f64;
            return format!("{}{name}", trim_float(value));
        }
    }
    format!("{ns}ns")
}

fn trim_float(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("5ms"), Ok(5_000_000));
        assert_eq!(parse_duration_ns("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration_ns("0.5ms"), Ok(500_000));
        assert_eq!(parse_duration_ns("5min"), Ok(300_000_000_000));
        assert_eq!(parse_duration_ns("2m"), Ok(120_000_000_000));
        assert_eq!(parse_duration_ns("1h"), Ok(3_600_000_000_000));
        assert_eq!(parse_duration_ns("60us"), Ok(60_000));
        assert_eq!(parse_duration_ns("7ns"), Ok(7));
        assert_eq!(parse_duration_ns("0"), Ok(0));
        assert_eq!(parse_signed_duration_ns("-5ms"), Ok(-5_000_000));
    }

    #[test]
    fn bad_durations_say_what_to_write() {
        let err = parse_duration_ns("5 ms").expect_err("space");
        assert!(err.message.contains("no space"), "{err:?}");
        assert!(err.help.contains("\"5ms\""), "{err:?}");
        let err = parse_duration_ns("5sec").expect_err("sec");
        assert!(err.message.contains("unknown duration unit `sec`"), "{err:?}");
        assert!(err.help.starts_with("write \"5s\""), "{err:?}");
        let err = parse_duration_ns("5").expect_err("no unit");
        assert!(err.help.contains("\"5ms\""), "{err:?}");
        let err = parse_duration_ns("-5ms").expect_err("negative");
        assert!(err.message.contains("durations cannot be negative"), "{err:?}");
        assert!(parse_duration_ns("ms").is_err());
        assert!(parse_duration_ns("").is_err());
        assert!(parse_duration_ns("1.s").is_err());
        assert!(parse_duration_ns("99999999999999999999999h").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size_bytes("16MB"), Ok(16 * 1024 * 1024));
        assert_eq!(parse_size_bytes("1kB"), Ok(1024));
        assert_eq!(parse_size_bytes("1KB"), Ok(1024));
        assert_eq!(parse_size_bytes("100B"), Ok(100));
        assert_eq!(parse_size_bytes("1.5GB"), Ok(1536 * 1024 * 1024));
        assert_eq!(parse_size_bytes("1TB"), Ok(1 << 40));
        assert_eq!(parse_size_bytes("0"), Ok(0));
        let err = parse_size_bytes("16mb").expect_err("case");
        assert!(err.help.starts_with("write \"16MB\""), "{err:?}");
        assert!(parse_size_bytes("16").is_err());
        assert!(parse_size_bytes("-1MB").is_err());
    }

    #[test]
    fn bandwidths() {
        assert_eq!(parse_bandwidth_bytes_per_sec("1Gbit"), Ok(125_000_000));
        assert_eq!(parse_bandwidth_bytes_per_sec("100Mbit/s"), Ok(12_500_000));
        assert_eq!(parse_bandwidth_bytes_per_sec("500MB"), Ok(500 * 1024 * 1024));
        let err = parse_bandwidth_bytes_per_sec("1gbit").expect_err("case");
        assert!(err.help.starts_with("write \"1Gbit\""), "{err:?}");
        assert!(parse_bandwidth_bytes_per_sec("100").is_err());
    }

    #[test]
    fn rates_and_formatting() {
        assert_eq!(parse_rate_per_sec("2000/s"), Ok(2000.0));
        assert_eq!(parse_rate_per_sec("60/min"), Ok(1.0));
        assert!(parse_rate_per_sec("2000").is_err());
        assert!(parse_rate_per_sec("0/s").is_err());
        assert_eq!(format_duration_ns(1_500_000), "1.5ms");
        assert_eq!(format_duration_ns(80_000_000_000), "80s");
        assert_eq!(format_duration_ns(7), "7ns");
    }
}
