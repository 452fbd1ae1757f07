//! `[ha]`: the Patroni-style HA manager's settings.

use super::diag::Diag;
use super::fields::{Field, Section};
use super::model::Ha;

const SECOND_NS: u64 = 1_000_000_000;

const HA_KEYS: &[&str] = &[
    "manager",
    "ttl",
    "loop_wait",
    "retry_timeout",
    "maximum_lag_on_failover",
    "synchronous_mode",
    "synchronous_mode_strict",
    "use_pg_rewind",
    "remove_data_directory_on_rewind_failure",
    "nofailover",
    "failover_priority",
    "check_interval",
];

pub(crate) fn read_ha(top: &Section, nodes: &[String]) -> Result<Option<Ha>, Diag> {
    let Some(field) = top.get("ha") else { return Ok(None) };
    let s = field.section()?;
    s.check_keys(HA_KEYS)?;
    if let Some(manager) = s.get("manager") {
        let name = manager.str("\"patroni\"")?;
        if name != "patroni" {
            return Err(manager
                .error(format!("unknown HA manager \"{name}\""))
                .help("the only manager modelled is \"patroni\"; omit [ha] for manual failover"));
        }
    }
    let mut ha = Ha {
        ttl_ns: 30 * SECOND_NS,
        loop_wait_ns: 10 * SECOND_NS,
        retry_timeout_ns: 10 * SECOND_NS,
        maximum_lag_on_failover_bytes: 1024 * 1024,
        synchronous_mode: false,
        synchronous_mode_strict: false,
        use_pg_rewind: false,
        remove_data_directory_on_rewind_failure: false,
        nofailover: Vec::new(),
        failover_priority: vec![1; nodes.len()],
        check_interval_ns: 3 * SECOND_NS,
    };
    s.set("ttl", &mut ha.ttl_ns, |f| f.interval_ns(false))?;
    s.set("loop_wait", &mut ha.loop_wait_ns, |f| f.interval_ns(false))?;
    s.set("retry_timeout", &mut ha.retry_timeout_ns, |f| f.interval_ns(false))?;
    s.set("maximum_lag_on_failover", &mut ha.maximum_lag_on_failover_bytes, Field::size_bytes)?;
    s.set("synchronous_mode", &mut ha.synchronous_mode, Field::bool)?;
    s.set("synchronous_mode_strict", &mut ha.synchronous_mode_strict, Field::bool)?;
    s.set("use_pg_rewind", &mut ha.use_pg_rewind, Field::bool)?;
    s.set("remove_data_directory_on_rewind_failure", &mut ha.remove_data_directory_on_rewind_failure, Field::bool)?;
    s.set("check_interval", &mut ha.check_interval_ns, |f| f.interval_ns(false))?;
    if let Some(list) = s.get("nofailover") {
        for item in list.array("[\"pg3\"]")? {
            ha.nofailover.push(list.element(item).node(nodes)?);
        }
    }
    if let Some(priorities) = s.get("failover_priority") {
        let table = priorities.section()?;
        for (key, _) in &table.table.entries {
            let node_field = table.get(&key.name).expect("listed key");
            let node = nodes.iter().position(|n| *n == key.name).ok_or_else(|| {
                Diag::new(format!("`{}` is not a cluster node", key.name), key.span.clone()).help(format!(
                    "write `failover_priority = {{ {} = 2 }}` with one of: {}",
                    nodes[0],
                    nodes.join(", ")
                ))
            })?;
            let value = node_field.float("2")?;
            ha.failover_priority[node] = value as i32;
        }
    }
    check_timing_rule(&s, &ha)?;
    Ok(Some(ha))
}

/// Patroni's rule `loop_wait + 2 * retry_timeout <= ttl`: the leader must learn it has to step
/// down no later than its lease can expire.
fn check_timing_rule(s: &Section, ha: &Ha) -> Result<(), Diag> {
    let needed = ha.loop_wait_ns + 2 * ha.retry_timeout_ns;
    if needed <= ha.ttl_ns {
        return Ok(());
    }
    let secs = |ns: u64| format!("{}s", ns as f64 / 1e9);
    let place = s.get("ttl").or_else(|| s.get("loop_wait")).or_else(|| s.get("retry_timeout"));
    let message = format!("loop_wait + 2 * retry_timeout = {} is more than ttl = {}", secs(needed), secs(ha.ttl_ns));
    let help = format!(
        "Patroni requires loop_wait + 2*retry_timeout <= ttl, or a leader may still act after its lease expired; \
         raise ttl to at least \"{}\" or lower loop_wait / retry_timeout",
        secs(needed)
    );
    Err(match place {
        Some(field) => field.error(message).help(help),
        None => Diag::new(message, s.span.clone()).help(help),
    })
}
