//! A TOML document as a tree of values that remember where they came from.
//!
//! `toml::Spanned<T>` needs every value to have a span, but the TOML parser gives none to
//! implicit tables (`[node.pg3]` without `[node]`, dotted keys). This tree asks the deserializer
//! for a span the same way `toml::Spanned` does and falls back to "no span" where there is
//! none. Keys always carry their span when parsed from a file. Values that came from a `--set`
//! override have their spans removed, so an error about them never points into the file.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A byte range in the scenario file, if the value came from the file.
pub(crate) type Span = Option<Range<usize>>;

// The protocol `toml::Spanned` uses to ask the TOML deserializer for a span (serde_spanned 0.6).
const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_END, SPANNED_VALUE];
// The key a TOML date-time is wrapped in (toml_datetime 0.6).
const DATETIME_FIELD: &str = "$__toml_private_datetime";

#[derive(Clone, Debug)]
pub(crate) struct Key {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub(crate) struct Value {
    pub span: Span,
    pub kind: Kind,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime,
    Array(Vec<Value>),
    Table(Table),
}

/// A TOML table, entries in file order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Table {
    pub entries: Vec<(Key, Value)>,
}

impl Kind {
    /// "a string", "an integer", … for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Str(_) => "a string",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a float",
            Kind::Bool(_) => "a boolean",
            Kind::Datetime => "a date-time",
            Kind::Array(_) => "an array",
            Kind::Table(_) => "a table",
        }
    }
}

impl Table {
    pub fn get(&self, name: &str) -> Option<&(Key, Value)> {
        self.entries.iter().find(|(key, _)| key.name == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        self.entries.iter_mut().find(|(key, _)| key.name == name).map(|(_, value)| value)
    }

    /// Replaces the value of `name` (keeping the key's position, forgetting its span, as the
    /// new value did not come from there) or appends a new entry.
    pub fn set(&mut self, name: &str, value: Value) {
        match self.entries.iter_mut().find(|(key, _)| key.name == name) {
            Some(entry) => *entry = (Key { name: name.to_string(), span: None }, value),
            None => self.entries.push((Key { name: name.to_string(), span: None }, value)),
        }
    }
}

impl Value {
    pub fn unspanned(kind: Kind) -> Value {
        Value { span: None, kind }
    }

    /// Removes every span in this value (for values that did not come from the file).
    pub fn strip_spans(&mut self) {
        self.span = None;
        match &mut self.kind {
            Kind::Array(items) => items.iter_mut().for_each(Value::strip_spans),
            Kind::Table(table) => {
                for (key, value) in &mut table.entries {
                    key.span = None;
                    value.strip_spans();
                }
            }
            _ => {}
        }
    }
}

/// Parses a TOML document into its root table.
pub(crate) fn parse_document(text: &str) -> Result<Table, toml::de::Error> {
    let root: Kind = toml::from_str(text)?;
    match root {
        Kind::Table(table) => Ok(table),
        // The root of a TOML document is always a table.
        _ => Ok(Table::default()),
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Key, E> {
        Ok(Key { name: text.to_string(), span: None })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        let (mut start, mut end, mut name) = (None, None, None);
        while let Some(field) = map.next_key::<String>()? {
            match field.as_str() {
                SPANNED_START => start = Some(map.next_value::<usize>()?),
                SPANNED_END => end = Some(map.next_value::<usize>()?),
                SPANNED_VALUE => name = Some(map.next_value::<String>()?),
                _ => return Err(de::Error::custom("unexpected field in a spanned key")),
            }
        }
        let name = name.ok_or_else(|| de::Error::custom("spanned key without a value"))?;
        let span = start.zip(end).map(|(start, end)| start..end);
        Ok(Key { name, span })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Kind, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Kind, E> {
        Ok(Kind::Str(text.to_string()))
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Kind, E> {
        Ok(Kind::Int(number))
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Kind, E> {
        i64::try_from(number).map(Kind::Int).map_err(|_| de::Error::custom("integer too large"))
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Kind, E> {
        Ok(Kind::Float(number))
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(flag))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Kind::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Kind, A::Error> {
        read_table_entries(map, None)
    }
}

/// Reads the rest of a map as a table (or a date-time), `first` being an already-read key.
fn read_table_entries<'de, A: MapAccess<'de>>(mut map: A, first: Option<Key>) -> Result<Kind, A::Error> {
    let mut entries = Vec::new();
    let mut next = match first {
        Some(key) => Some(key),
        None => map.next_key::<Key>()?,
    };
    while let Some(key) = next {
        if key.name == DATETIME_FIELD && entries.is_empty() {
            map.next_value::<String>()?;
            return Ok(Kind::Datetime);
        }
        let value = map.next_value::<Value>()?;
        entries.push((key, value));
        next = map.next_key::<Key>()?;
    }
    Ok(Kind::Table(Table { entries }))
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, ValueVisitor)
    }
}

/// Accepts either the spanned form (start, end, value) or, for values the parser has no span
/// for, the plain value.
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Value, E> {
        KindVisitor.visit_str(text).map(Value::unspanned)
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Value, E> {
        KindVisitor.visit_i64(number).map(Value::unspanned)
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Value, E> {
        KindVisitor.visit_u64(number).map(Value::unspanned)
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Value, E> {
        KindVisitor.visit_f64(number).map(Value::unspanned)
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Value, E> {
        KindVisitor.visit_bool(flag).map(Value::unspanned)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        KindVisitor.visit_seq(seq).map(Value::unspanned)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Some(first) = map.next_key::<Key>()? else {
            return Ok(Value::unspanned(Kind::Table(Table::default())));
        };
        if first.name != SPANNED_START {
            return read_table_entries(map, Some(first)).map(Value::unspanned);
        }
        let start = map.next_value::<usize>()?;
        let end = expect_field(&mut map, SPANNED_END)?;
        let kind = expect_field::<A, Kind>(&mut map, SPANNED_VALUE)?;
        Ok(Value { span: Some(start..end), kind })
    }
}

fn expect_field<'de, A: MapAccess<'de>, T: Deserialize<'de>>(map: &mut A, name: &str) -> Result<T, A::Error> {
    match map.next_key::<String>()? {
        Some(field) if field == name => map.next_value::<T>(),
        _ => Err(de::Error::custom("malformed spanned value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of<'a>(source: &'a str, span: &Span) -> &'a str {
        span.clone().and_then(|r| source.get(r)).unwrap_or("<none>")
    }

    #[test]
    fn keeps_spans_of_keys_and_values() {
        let source = "a = \"x\"\n[t]\nb = [1, 2.5]\n[u.v]\nc = true\n";
        let root = parse_document(source).expect("valid TOML");
        let (key, value) = root.get("a").expect("a");
        assert_eq!(text_of(source, &key.span), "a");
        assert_eq!(text_of(source, &value.span), "\"x\"");
        let (_, t) = root.get("t").expect("t");
        assert!(text_of(source, &t.span).starts_with("[t]"));
        let Kind::Table(t) = &t.kind else { panic!("t is a table") };
        let (_, b) = t.get("b").expect("b");
        let Kind::Array(items) = &b.kind else { panic!("b is an array") };
        assert_eq!(text_of(source, &items[1].span), "2.5");
        // `u` is implicit: no span of its own, but its key has one.
        let (u_key, u) = root.get("u").expect("u");
        assert_eq!(text_of(source, &u_key.span), "u");
        assert!(matches!(u.kind, Kind::Table(_)));
    }

    #[test]
    fn datetimes_and_strip_spans() {
        let root = parse_document("d = 1979-05-27T07:32:00Z\n").expect("valid TOML");
        let (_, d) = root.get("d").expect("d");
        assert!(matches!(&d.kind, Kind::Datetime));
        let mut copy = d.clone();
        copy.strip_spans();
        assert!(copy.span.is_none());
    }
}
