//! `[endpoints]`: managed-service endpoints (AWS RDS / Aurora style, spec ha-and-routing §5.3):
//! a writer endpoint and a reader endpoint resolved through DNS, cached by the clients.

use super::diag::Diag;
use super::fields::{Field, Section};
use super::model::{EndpointsSpec, Workload};
use super::tree::Kind;
use repsim_engine::client::RouterKind;

const SECOND_NS: u64 = 1_000_000_000;
const KEYS: &[&str] = &["dns_ttl", "client_dns_cache", "update_delay"];

/// `[endpoints]`, if present.
pub(crate) fn read_endpoints(top: &Section, workload: &Workload) -> Result<Option<EndpointsSpec>, Diag> {
    let Some(field) = top.get("endpoints") else { return Ok(None) };
    let s = field.section()?;
    s.check_keys(KEYS)?;
    // Aurora's cluster endpoints publish a 5 s TTL (spec §5.3); the record is repointed as
    // part of the failover, so no delay beyond the control plane's decision by default.
    let mut spec = EndpointsSpec { dns_ttl_ns: 5 * SECOND_NS, client_dns_cache_ns: 0, update_delay_ns: 0 };
    s.set("dns_ttl", &mut spec.dns_ttl_ns, Field::duration_ns)?;
    s.set("client_dns_cache", &mut spec.client_dns_cache_ns, read_client_cache)?;
    s.set("update_delay", &mut spec.update_delay_ns, Field::duration_ns)?;
    if !matches!(workload.router, RouterKind::Primary | RouterKind::Replica) {
        return Err(field
            .error(format!(
                "with `[endpoints]` the application reaches the nodes through DNS names, and `[workload] router` is \"{}\"",
                workload.router.name()
            ))
            .help("set `router = \"primary\"` (everything through the writer endpoint) or `router = \"replica\"` (reads through the reader endpoint)"));
    }
    if top.get("pooler").is_some() {
        return Err(field
            .error("`[endpoints]` with a `[pooler]` is not modelled")
            .help("remove one of the two tables: the pooler connects to the nodes itself"));
    }
    Ok(Some(spec))
}

/// How long clients keep an answer past its TTL: a duration (`"30s"`, the JVM's default
/// `networkaddress.cache.ttl`), `"0"` (the TTL is obeyed) or `"forever"` (a JVM with a security
/// manager, or an application that resolves once).
fn read_client_cache(f: &Field) -> Result<u64, Diag> {
    if matches!(&f.value.kind, Kind::Str(s) if s == "forever") {
        return Ok(u64::MAX);
    }
    f.duration_ns().map_err(|e| e.help("write a duration such as \"30s\", \"0\" to obey the TTL, or \"forever\""))
}
