//! Numbers as the reports print them: thousands separators, milliseconds, bytes in a readable unit.

/// A number for an axis or a table: up to 3 significant digits, no trailing zeros.
pub fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let mag = v.abs().log10().floor() as i32;
    let decimals = (2 - mag).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A unit for bytes whose largest value is `max`: `(divisor, name)`.
pub fn bytes_unit(max: f64) -> (f64, &'static str) {
    if max >= 1024.0 * 1024.0 * 1024.0 {
        (1024.0 * 1024.0 * 1024.0, "GiB")
    } else if max >= 1024.0 * 1024.0 {
        (1024.0 * 1024.0, "MiB")
    } else if max >= 1024.0 {
        (1024.0, "KiB")
    } else {
        (1.0, "B")
    }
}

/// A unit for nanoseconds whose largest value is `max`: `(divisor, name)`.
pub fn time_unit(max: f64) -> (f64, &'static str) {
    if max >= 10e9 {
        (1e9, "s")
    } else if max >= 1e5 {
        (1e6, "ms")
    } else {
        (1e3, "µs")
    }
}

/// `12345` as `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> =
        digits.as_bytes().rchunks(3).rev().map(|g| std::str::from_utf8(g).expect("ASCII digits")).collect();
    groups.join(",")
}

/// Nanoseconds as milliseconds with two decimals, as `summary.md` prints them.
pub fn ms(ns: u64) -> String {
    format!("{:.2} ms", ns as f64 / 1e6)
}

/// Text inside a markdown table cell: a `|` would end the cell, a newline the row.
pub fn table_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A duration in the unit a person reads: `45 s`, `12.50 ms`, `800 µs`.
pub fn duration(ns: u64) -> String {
    let (div, unit) = time_unit(ns as f64);
    let value = ns as f64 / div;
    if value.fract() == 0.0 {
        format!("{value} {unit}")
    } else {
        format!("{value:.2} {unit}")
    }
}

/// Bytes in a readable unit, one decimal.
pub fn bytes(b: u64) -> String {
    let (div, unit) = bytes_unit(b as f64);
    if div == 1.0 {
        format!("{b} B")
    } else {
        format!("{:.1} {unit}", b as f64 / div)
    }
}
