//! `--set key.path=value`: a change to the scenario tree before it is validated again.

use super::diag::Diag;
use super::tree::{parse_document, Kind, Table, Value};

const SET_HELP: &str =
    "write `--set key.path=value`, e.g. `--set network.loss=0.01` or `--set replication.synchronous_commit=remote_apply`";

/// A parsed `--set`.
pub(crate) struct Override {
    pub path: Vec<String>,
    pub value: Value,
}

/// Parses `key.path=value`. The value is TOML if it parses as a TOML value, else a plain string.
pub(crate) fn parse_override(text: &str) -> Result<Override, Diag> {
    let Some((key, raw_value)) = text.split_once('=') else {
        return Err(Diag::new("expected `key.path=value`", None).help(SET_HELP));
    };
    let path: Vec<String> = key.split('.').map(|segment| segment.trim().to_string()).collect();
    if path.iter().any(String::is_empty) {
        return Err(Diag::new(format!("`{}` is not a key path", key.trim()), None).help(SET_HELP));
    }
    Ok(Override { path, value: parse_value(raw_value.trim()) })
}

/// `5` → an integer, `{ dist = "constant", value = "5ms" }` → a table, `on` → the string "on".
fn parse_value(raw: &str) -> Value {
    let parsed = parse_document(&format!("v = {raw}")).ok().and_then(|mut table| {
        if table.entries.len() == 1 {
            table.entries.pop().map(|(_, value)| value)
        } else {
            None
        }
    });
    let mut value = parsed.unwrap_or_else(|| Value::unspanned(Kind::Str(raw.to_string())));
    value.strip_spans();
    value
}

/// Sets the value at `over.path` in `root`, creating missing tables on the way. Array
/// elements are addressed by index: `faults.0.at`.
pub(crate) fn apply_override(root: &mut Table, over: Override) -> Result<(), Diag> {
    let Some((last, parents)) = over.path.split_last() else {
        return Err(Diag::new("empty key path", None).help(SET_HELP));
    };
    let mut slot = Slot::Table(root);
    let mut walked = String::new();
    for segment in parents {
        slot = step(slot, segment, &walked)?;
        walked = join(&walked, segment);
    }
    match slot {
        Slot::Table(table) => table.set(last, over.value),
        Slot::Array(items) => *index_mut(items, last, &walked)? = over.value,
    }
    Ok(())
}

/// Where the next path segment is looked up.
enum Slot<'a> {
    Table(&'a mut Table),
    Array(&'a mut Vec<Value>),
}

fn join(walked: &str, segment: &str) -> String {
    if walked.is_empty() {
        segment.to_string()
    } else {
        format!("{walked}.{segment}")
    }
}

/// Descends into `segment` of `slot` (whose own path is `walked`).
fn step<'a>(slot: Slot<'a>, segment: &str, walked: &str) -> Result<Slot<'a>, Diag> {
    let child = match slot {
        Slot::Table(table) => {
            if table.get(segment).is_none() {
                table.set(segment, Value::unspanned(Kind::Table(Table::default())));
            }
            table
                .get_mut(segment)
                .ok_or_else(|| Diag::new(format!("cannot create `{}`", join(walked, segment)), None).help(SET_HELP))?
        }
        Slot::Array(items) => index_mut(items, segment, walked)?,
    };
    match &mut child.kind {
        Kind::Table(table) => Ok(Slot::Table(table)),
        Kind::Array(items) => Ok(Slot::Array(items)),
        other => {
            let path = join(walked, segment);
            Err(Diag::new(format!("`{path}` is {}, not a table", other.type_name()), None)
                .help(format!("set `{path}` itself: `--set {path}=<value>`")))
        }
    }
}

fn index_mut<'a>(items: &'a mut [Value], segment: &str, walked: &str) -> Result<&'a mut Value, Diag> {
    let len = items.len();
    let range = if len == 0 { "it is empty".to_string() } else { format!("use 0 to {}", len - 1) };
    segment.parse::<usize>().ok().and_then(|index| items.get_mut(index)).ok_or_else(|| {
        Diag::new(format!("`{walked}` is an array of {len}; `{segment}` is not an index of it"), None)
            .help(format!("address an element by its index: {range}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(table: &'a Table, path: &[&str]) -> Option<&'a Kind> {
        let (first, rest) = path.split_first()?;
        let value = &table.get(first)?.1;
        match (&value.kind, rest.is_empty()) {
            (kind, true) => Some(kind),
            (Kind::Table(inner), false) => get(inner, rest),
            _ => None,
        }
    }

    #[test]
    fn values_are_toml_or_plain_strings() {
        let over = parse_override("replication.synchronous_commit=on").expect("valid");
        assert_eq!(over.path, ["replication", "synchronous_commit"]);
        assert!(matches!(&over.value.kind, Kind::Str(s) if s == "on"));
        let over = parse_override("network.loss = 0.25").expect("valid");
        assert!(matches!(over.value.kind, Kind::Float(x) if x == 0.25));
        let over = parse_override("a={ dist = \"constant\", value = \"5ms\" }").expect("valid");
        assert!(matches!(&over.value.kind, Kind::Table(t) if t.entries.len() == 2));
        assert!(over.value.span.is_none());
        assert!(parse_override("no-equals-sign").is_err());
        assert!(parse_override("a..b=1").is_err());
    }

    #[test]
    fn applies_into_new_and_existing_tables_and_arrays() {
        let mut root = parse_document("[network]\nloss = 0.0\n[[faults]]\nat = \"1s\"\n").expect("toml");
        apply_override(&mut root, parse_override("network.loss=0.5").expect("ok")).expect("applies");
        assert!(matches!(get(&root, &["network", "loss"]), Some(Kind::Float(x)) if *x == 0.5));
        apply_override(&mut root, parse_override("workload.clients=4").expect("ok")).expect("applies");
        assert!(matches!(get(&root, &["workload", "clients"]), Some(Kind::Int(4))));
        apply_override(&mut root, parse_override("faults.0.at=2s").expect("ok")).expect("applies");
        let Some(Kind::Array(faults)) = get(&root, &["faults"]) else { panic!("faults") };
        let Kind::Table(fault) = &faults[0].kind else { panic!("table") };
        assert!(matches!(&fault.get("at").expect("at").1.kind, Kind::Str(s) if s == "2s"));
        let err = apply_override(&mut root, parse_override("faults.3.at=2s").expect("ok")).expect_err("index");
        assert!(err.message.contains("not an index"), "{err:?}");
        let err = apply_override(&mut root, parse_override("network.loss.x=1").expect("ok")).expect_err("scalar");
        assert!(err.message.contains("is a float, not a table"), "{err:?}");
    }
}
