//! Typed, checked access to the values of a scenario table, with errors that point at the
//! offending key or value and say what to write instead.

use super::diag::{did_you_mean, Diag};
use super::tree::{Kind, Span, Table, Value};
use super::units::{self, UnitError};

/// The longest duration a scenario may write (24 hours): every simulated time is a sum of a
/// few such values and stays far below 2^64 ns (584 years).
pub const MAX_DURATION_NS: u64 = 24 * 3600 * 1_000_000_000;
/// The shortest periodic interval (timers, loops, checks).
pub const MIN_INTERVAL_NS: u64 = 1_000_000;
/// Bounds of other values that would make a run impossible rather than interesting.
pub const MAX_CLIENTS: u64 = 10_000;
pub const MAX_KEYS: u64 = 10_000_000;
pub const MAX_SLOW_DISK_FACTOR: f64 = 10_000.0;
/// A clock drifting by more than 10% is a broken clock, not a drifting one.
pub const MAX_CLOCK_DRIFT_PPM: f64 = 100_000.0;

/// The keys of the top level of a scenario file.
pub(crate) const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "duration",
    "settle",
    "cluster",
    "replication",
    "node",
    "network",
    "disk",
    "workload",
    "faults",
    "ha",
    "archive",
    "pooler",
    "endpoints",
    "logical",
    "multi_master",
    "expect",
];

/// A table of the scenario and where it is.
#[derive(Clone, Copy)]
pub(crate) struct Section<'a> {
    /// Dotted path of the table, as `--set` writes it (`""` for the top level).
    pub path: &'a str,
    pub table: &'a Table,
    /// The table's header or inline table, or else the key that introduced it.
    pub span: &'a Span,
}

/// One value of a table (or an element of an array) and where it is.
#[derive(Clone)]
pub(crate) struct Field<'a> {
    /// Dotted path, as `--set` writes it: `network.loss`.
    pub path: String,
    pub key_span: &'a Span,
    pub value: &'a Value,
}

impl<'a> Section<'a> {
    pub fn root(table: &'a Table) -> Section<'a> {
        Section { path: "", table, span: &ROOT_SPAN }
    }

    /// `[network]`, or `the top level`.
    pub fn label(&self) -> String {
        if self.path.is_empty() {
            "the top level".to_string()
        } else {
            format!("[{}]", self.path)
        }
    }

    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Errors on the first key not in `allowed`, suggesting the closest allowed one.
    pub fn check_keys(&self, allowed: &[&str]) -> Result<(), Diag> {
        self.check_keys_or(allowed, |_| false, "")
    }

    /// Like `check_keys`, also allowing keys for which `extra` holds (`extra_help` describes
    /// them, e.g. "; or a node name: pg1, pg2").
    pub fn check_keys_or(&self, allowed: &[&str], extra: impl Fn(&str) -> bool, extra_help: &str) -> Result<(), Diag> {
        let help = format!("expected one of: {}{extra_help}", allowed.join(", "));
        self.check_keys_with_help(allowed, extra, &help)
    }

    /// Errors on the first key that is neither in `allowed` nor accepted by `extra`; the help
    /// is "did you mean `x`? " (when one is close) followed by `help`.
    pub fn check_keys_with_help(&self, allowed: &[&str], extra: impl Fn(&str) -> bool, help: &str) -> Result<(), Diag> {
        let unknown = self
            .table
            .entries
            .iter()
            .map(|(key, _)| key)
            .find(|key| !allowed.contains(&key.name.as_str()) && !extra(&key.name));
        let Some(key) = unknown else { return Ok(()) };
        let suggestion = did_you_mean(&key.name, allowed.iter().copied());
        let misplaced = if !self.path.is_empty() && TOP_KEYS.contains(&key.name.as_str()) {
            format!("; `{}` is a top-level key: move it above the first [table] header", key.name)
        } else {
            String::new()
        };
        Err(Diag::new(format!("unknown key `{}` in {}", key.name, self.label()), key.span.clone())
            .help(format!("{suggestion}{help}{misplaced}")))
    }

    pub fn get(&self, key: &str) -> Option<Field<'a>> {
        self.table.get(key).map(|(k, value)| Field { path: self.key_path(key), key_span: &k.span, value })
    }

    /// The value of a required key; `example` is a complete `key = value` line for the help.
    pub fn required(&self, key: &str, example: &str) -> Result<Field<'a>, Diag> {
        self.get(key).ok_or_else(|| {
            let place = if self.path.is_empty() {
                "at the top level, above the first [table] header".to_string()
            } else {
                format!("to {}", self.label())
            };
            Diag::new(format!("missing required key `{key}` in {}", self.label()), self.span.clone())
                .help(format!("add `{example}` {place}"))
        })
    }

    /// Applies `read` to the value of `key` if present.
    pub fn opt<T>(&self, key: &str, read: impl FnOnce(&Field<'a>) -> Result<T, Diag>) -> Result<Option<T>, Diag> {
        self.get(key).map(|field| read(&field)).transpose()
    }

    /// Applies `read` to the value of `key` if present, writing the result to `target`.
    pub fn set<T>(
        &self,
        key: &str,
        target: &mut T,
        read: impl FnOnce(&Field<'a>) -> Result<T, Diag>,
    ) -> Result<(), Diag> {
        if let Some(value) = self.opt(key, read)? {
            *target = value;
        }
        Ok(())
    }
}

/// The top level has no span of its own; "missing key" errors there point at the file start.
static ROOT_SPAN: Span = Some(0..0);

impl<'a> Field<'a> {
    /// Where to point: the value, or the key when the value has no span of its own.
    pub fn span(&self) -> Span {
        self.value.span.clone().or_else(|| self.key_span.clone())
    }

    /// The last component of the path: the key as written in its table.
    pub fn key(&self) -> &str {
        self.path.rsplit('.').next().unwrap_or(&self.path)
    }

    pub fn error(&self, message: impl Into<String>) -> Diag {
        Diag::new(message, self.span())
    }

    /// "`path` must be {expected}, found an integer", with `help`.
    pub fn type_error(&self, expected: &str, help: impl Into<String>) -> Diag {
        let found = self.value.kind.type_name();
        self.error(format!("`{}` must be {expected}, found {found}", self.path)).help(help)
    }

    /// An element of this array value, for messages about it.
    pub fn element(&self, value: &'a Value) -> Field<'a> {
        Field { path: self.path.clone(), key_span: self.key_span, value }
    }

    /// Element `index` of this array value, its path extended with the index (`faults.2`).
    pub fn item(&self, index: usize, value: &'a Value) -> Field<'a> {
        Field { path: format!("{}.{index}", self.path), key_span: self.key_span, value }
    }

    pub fn section(&self) -> Result<Section<'_>, Diag> {
        match &self.value.kind {
            Kind::Table(table) => {
                let span = if self.value.span.is_some() { &self.value.span } else { self.key_span };
                Ok(Section { path: &self.path, table, span })
            }
            _ => Err(self.type_error("a table", format!("write `[{}]` followed by its keys", self.path))),
        }
    }

    pub fn array(&self, example: &str) -> Result<&'a [Value], Diag> {
        match &self.value.kind {
            Kind::Array(items) => Ok(items),
            _ => Err(self.type_error("an array", format!("write `{} = {example}`", self.key()))),
        }
    }

    pub fn str(&self, example: &str) -> Result<&'a str, Diag> {
        match &self.value.kind {
            Kind::Str(text) => Ok(text),
            _ => Err(self.type_error("a string", format!("write `{} = {example}`", self.key()))),
        }
    }

    pub fn bool(&self) -> Result<bool, Diag> {
        match &self.value.kind {
            Kind::Bool(flag) => Ok(*flag),
            Kind::Str(text) if text == "true" || text == "false" => {
                Err(self.type_error("a boolean", format!("write `{} = {text}`, without quotes", self.key())))
            }
            _ => {
                Err(self.type_error("a boolean", format!("write `{} = true` or `{} = false`", self.key(), self.key())))
            }
        }
    }

    /// A float (an integer is accepted too), finite.
    pub fn float(&self, example: &str) -> Result<f64, Diag> {
        let number = match &self.value.kind {
            Kind::Float(number) => *number,
            Kind::Int(number) => *number as f64,
            Kind::Str(text) if text.trim().parse::<f64>().is_ok() => {
                return Err(
                    self.type_error("a number", format!("write `{} = {}`, without quotes", self.key(), text.trim()))
                )
            }
            _ => return Err(self.type_error("a number", format!("write e.g. `{} = {example}`", self.key()))),
        };
        if !number.is_finite() {
            return Err(self
                .error(format!("`{}` must be a finite number", self.path))
                .help(format!("write e.g. `{} = {example}`", self.key())));
        }
        Ok(number)
    }

    /// A number in `0..=1` (or `0..1` when `one_allowed` is false).
    pub fn probability(&self, one_allowed: bool) -> Result<f64, Diag> {
        let number = self.float("0.01")?;
        let in_range = number >= 0.0 && (number < 1.0 || (one_allowed && number == 1.0));
        if in_range {
            return Ok(number);
        }
        let range = if one_allowed { "between 0 and 1" } else { "at least 0 and below 1" };
        Err(self
            .error(format!("`{}` is a probability and must be {range}, found {number}", self.path))
            .help(format!("write e.g. `{} = 0.01` for 1%", self.key())))
    }

    /// An integer `>= min`.
    pub fn u64_at_least(&self, min: u64, example: &str) -> Result<u64, Diag> {
        let number = match &self.value.kind {
            Kind::Int(number) => *number,
            Kind::Str(text) if text.trim().parse::<i64>().is_ok() => {
                return Err(
                    self.type_error("an integer", format!("write `{} = {}`, without quotes", self.key(), text.trim()))
                )
            }
            _ => return Err(self.type_error("an integer", format!("write e.g. `{} = {example}`", self.key()))),
        };
        u64::try_from(number).ok().filter(|n| *n >= min).ok_or_else(|| {
            self.error(format!("`{}` must be at least {min}, found {number}", self.path))
                .help(format!("write e.g. `{} = {example}`", self.key()))
        })
    }

    pub fn u32_at_least(&self, min: u32, example: &str) -> Result<u32, Diag> {
        let number = self.u64_at_least(u64::from(min), example)?;
        u32::try_from(number).map_err(|_| {
            self.error(format!("`{}` is too large: {number}", self.path))
                .help(format!("write e.g. `{} = {example}`", self.key()))
        })
    }

    fn unit_text(&self, kind: &str, example: &str) -> Result<&'a str, Diag> {
        match &self.value.kind {
            Kind::Str(text) => Ok(text),
            // Zero needs no unit (`wal_sender_timeout = 0` turns it off, as in postgresql.conf).
            Kind::Int(0) => Ok("0"),
            Kind::Int(number) => Err(self.type_error(
                &format!("a {kind} string with a unit"),
                format!("write `{} = \"{number}{example}\"` (or another unit)", self.key()),
            )),
            _ => Err(self.type_error(
                &format!("a {kind} string with a unit"),
                format!("write e.g. `{} = \"5{example}\"`", self.key()),
            )),
        }
    }

    fn unit_error(&self, error: UnitError) -> Diag {
        self.error(format!("invalid `{}`: {}", self.path, error.message)).help(error.help)
    }

    pub fn duration_ns(&self) -> Result<u64, Diag> {
        let text = self.unit_text("duration", "ms")?;
        let ns = units::parse_duration_ns(text).map_err(|e| self.unit_error(e))?;
        self.within_bounds(ns)
    }

    fn within_bounds(&self, ns: u64) -> Result<u64, Diag> {
        if ns > MAX_DURATION_NS {
            return Err(self
                .error(format!("`{}` is longer than the longest duration repsim simulates, 24h", self.path))
                .help(format!(
                    "write at most `{} = \"24h\"`: simulated times stay far from 64-bit overflow when added up",
                    self.key()
                )));
        }
        Ok(ns)
    }

    /// A periodic interval: at least 1 ms (a shorter one floods the event queue without
    /// telling anything new; PostgreSQL's own minimum is 1 ms or more for each), or 0 where
    /// `zero_disables` (PostgreSQL's "0 turns it off").
    pub fn interval_ns(&self, zero_disables: bool) -> Result<u64, Diag> {
        let ns = self.duration_ns()?;
        if ns == 0 && zero_disables {
            return Ok(0);
        }
        if ns < MIN_INTERVAL_NS {
            let zero = if zero_disables { " (or \"0\" to turn it off)" } else { "" };
            return Err(self
                .error(format!("`{}` is a periodic interval and must be at least 1ms", self.path))
                .help(format!("write e.g. `{} = \"1ms\"`{zero}", self.key())));
        }
        Ok(ns)
    }

    /// A number in `[min, max]`.
    pub fn float_in(&self, min: f64, max: f64, example: &str) -> Result<f64, Diag> {
        let number = self.float(example)?;
        if !(min..=max).contains(&number) {
            return Err(self
                .error(format!("`{}` must be between {min} and {max}, found {number}", self.path))
                .help(format!("write e.g. `{} = {example}`", self.key())));
        }
        Ok(number)
    }

    /// An integer in `[min, max]`.
    pub fn u64_in(&self, min: u64, max: u64, example: &str) -> Result<u64, Diag> {
        let number = self.u64_at_least(min, example)?;
        if number > max {
            return Err(self
                .error(format!("`{}` must be at most {max}, found {number}", self.path))
                .help(format!("write e.g. `{} = {example}`", self.key())));
        }
        Ok(number)
    }

    /// A duration strictly above zero.
    pub fn positive_duration_ns(&self) -> Result<u64, Diag> {
        let ns = self.duration_ns()?;
        if ns == 0 {
            return Err(self
                .error(format!("`{}` must be above zero", self.path))
                .help(format!("write e.g. `{} = \"10s\"`", self.key())));
        }
        Ok(ns)
    }

    pub fn signed_duration_ns(&self) -> Result<i64, Diag> {
        let text = self.unit_text("duration", "ms")?;
        let ns = units::parse_signed_duration_ns(text).map_err(|e| self.unit_error(e))?;
        self.within_bounds(ns.unsigned_abs())?;
        Ok(ns)
    }

    pub fn size_bytes(&self) -> Result<u64, Diag> {
        let text = self.unit_text("size", "MB")?;
        units::parse_size_bytes(text).map_err(|e| self.unit_error(e))
    }

    /// Bytes per second, above zero.
    pub fn bandwidth_bytes_per_sec(&self) -> Result<u64, Diag> {
        let text = self.unit_text("bandwidth", "Mbit")?;
        let rate = units::parse_bandwidth_bytes_per_sec(text).map_err(|e| self.unit_error(e))?;
        if rate == 0 {
            return Err(self
                .error(format!("`{}` must be above zero", self.path))
                .help(format!("write e.g. `{} = \"1Gbit\"`", self.key())));
        }
        Ok(rate)
    }

    /// A node name of the cluster, as its index in `nodes`.
    pub fn node(&self, nodes: &[String]) -> Result<usize, Diag> {
        let name = self.str("\"pg1\"")?;
        nodes.iter().position(|n| n == name).ok_or_else(|| unknown_node(self, name, nodes))
    }
}

/// "unknown node `pg9`", listing the cluster's nodes.
pub(crate) fn unknown_node(field: &Field, name: &str, nodes: &[String]) -> Diag {
    let suggestion = did_you_mean(name, nodes.iter().map(String::as_str));
    field
        .error(format!("unknown node `{name}` in `{}`", field.path))
        .help(format!("{suggestion}the cluster's nodes are: {}", nodes.join(", ")))
}
