//! `[pooler]`: a connection pooler between the clients and the nodes, PgBouncer's or PgPool-II's
//! (spec ha-and-routing §5.2), with their defaults.

use super::diag::{did_you_mean, Diag};
use super::fields::{Field, Section};
use super::model::{Cluster, PgpoolLoadBalance, PoolMode, PoolerKind, PoolerSpec, Workload};

const US_NS: u64 = 1_000;
const SECOND_NS: u64 = 1_000_000_000;

const PGBOUNCER_KEYS: &[&str] = &["pool_mode", "default_pool_size", "max_client_conn", "query_wait_timeout"];
const PGPOOL_KEYS: &[&str] = &[
    "num_init_children",
    "load_balance",
    "backend_weight",
    "delay_threshold",
    "sr_check_period",
    "disable_load_balance_on_write",
];
const COMMON_KEYS: &[&str] = &["kind", "server_connect_cpu"];

fn defaults(kind: PoolerKind, nodes: usize) -> PoolerSpec {
    PoolerSpec {
        kind,
        // PgBouncer's defaults (pgbouncer.ini): pool_mode = session, default_pool_size = 20,
        // max_client_conn = 100, query_wait_timeout = 120 s.
        pool_mode: PoolMode::Session,
        default_pool_size: 20,
        max_client_conn: 100,
        query_wait_timeout_ns: 120 * SECOND_NS,
        // A backend's start-up (fork, authentication, catalog cache warm-up) costs a few
        // milliseconds of server CPU [model: an assumption, not a published figure].
        server_connect_cpu_ns: 2_000 * US_NS,
        // PgPool-II's defaults: num_init_children = 32, load_balance_mode = on with
        // statement_level_load_balance = off, backend_weight 1 each, delay_threshold = 0 (off),
        // sr_check_period = 10 s, disable_load_balance_on_write = transaction.
        num_init_children: 32,
        load_balance: PgpoolLoadBalance::Session,
        backend_weight: vec![1; nodes],
        delay_threshold_bytes: 0,
        sr_check_period_ns: 10 * SECOND_NS,
        balance_after_write: true,
    }
}

/// `[pooler]`, if present. `kind` picks which keys apply; the other pooler's keys are rejected.
pub(crate) fn read_pooler(top: &Section, cluster: &Cluster, workload: &Workload) -> Result<Option<PoolerSpec>, Diag> {
    let Some(field) = top.get("pooler") else { return Ok(None) };
    let s = field.section()?;
    let kind = match s.get("kind") {
        None => PoolerKind::Pgbouncer,
        Some(f) => read_kind(&f)?,
    };
    let (own, other, other_name) = match kind {
        PoolerKind::Pgbouncer => (PGBOUNCER_KEYS, PGPOOL_KEYS, "pgpool"),
        PoolerKind::Pgpool => (PGPOOL_KEYS, PGBOUNCER_KEYS, "pgbouncer"),
    };
    for key in other {
        if let Some(f) = s.get(key) {
            return Err(f
                .error(format!("`{key}` is a {other_name} setting; this pooler is {}", kind.name()))
                .help(format!("remove it, or set `kind = \"{other_name}\"`")));
        }
    }
    let allowed: Vec<&str> = COMMON_KEYS.iter().chain(own).copied().collect();
    s.check_keys(&allowed)?;
    let mut p = defaults(kind, cluster.nodes.len());
    s.set("server_connect_cpu", &mut p.server_connect_cpu_ns, Field::duration_ns)?;
    s.set("pool_mode", &mut p.pool_mode, read_pool_mode)?;
    s.set("default_pool_size", &mut p.default_pool_size, |f| f.u32_at_least(1, "20"))?;
    s.set("max_client_conn", &mut p.max_client_conn, |f| f.u32_at_least(1, "100"))?;
    s.set("query_wait_timeout", &mut p.query_wait_timeout_ns, Field::duration_ns)?;
    s.set("num_init_children", &mut p.num_init_children, |f| f.u32_at_least(1, "32"))?;
    s.set("load_balance", &mut p.load_balance, read_load_balance)?;
    s.set("delay_threshold", &mut p.delay_threshold_bytes, Field::size_bytes)?;
    s.set("sr_check_period", &mut p.sr_check_period_ns, Field::positive_duration_ns)?;
    s.set("disable_load_balance_on_write", &mut p.balance_after_write, read_on_write)?;
    if let Some(weights) = s.get("backend_weight") {
        p.backend_weight = read_weights(&weights, &cluster.nodes)?;
    }
    if kind == PoolerKind::Pgpool {
        // The application has one address, PgPool-II's: it picks the node for every statement
        // (the primary for all of them with `load_balance = "off"`).
        if workload.router != repsim_engine::client::RouterKind::Primary {
            return Err(field
                .error(format!(
                    "PgPool-II routes every statement itself, and `[workload] router` is \"{}\"",
                    workload.router.name()
                ))
                .help("remove `router` from [workload]: the application sends everything to PgPool-II, which balances reads by `load_balance`"));
        }
        if p.backend_weight.iter().all(|&w| w == 0) {
            return Err(field
                .error("every `backend_weight` is 0: no node can take reads")
                .help("give at least one node a weight above 0"));
        }
    }
    Ok(Some(p))
}

fn read_kind(f: &Field) -> Result<PoolerKind, Diag> {
    let text = f.str("\"pgbouncer\"")?;
    match text {
        "pgbouncer" => Ok(PoolerKind::Pgbouncer),
        "pgpool" => Ok(PoolerKind::Pgpool),
        _ => Err(unknown(f, text, "pooler kind", &["pgbouncer", "pgpool"])),
    }
}

fn read_pool_mode(f: &Field) -> Result<PoolMode, Diag> {
    let text = f.str("\"transaction\"")?;
    match text {
        "session" => Ok(PoolMode::Session),
        "transaction" => Ok(PoolMode::Transaction),
        // Every operation is one autocommit statement, so statement pooling is transaction pooling.
        "statement" => Err(f
            .error("pool_mode \"statement\" is not modelled")
            .help("every operation is one autocommit statement, so write \"transaction\" (the same here)")),
        _ => Err(unknown(f, text, "pool_mode", &["session", "transaction"])),
    }
}

fn read_load_balance(f: &Field) -> Result<PgpoolLoadBalance, Diag> {
    let text = f.str("\"session\"")?;
    match text {
        "session" => Ok(PgpoolLoadBalance::Session),
        "statement" => Ok(PgpoolLoadBalance::Statement),
        "off" => Ok(PgpoolLoadBalance::Off),
        _ => Err(unknown(f, text, "load_balance", &["session", "statement", "off"])),
    }
}

/// `disable_load_balance_on_write`: whether reads still balance after a write in the session.
/// Every operation here is an autocommit statement outside an explicit transaction, where
/// `transaction`, `trans_transaction`, `dml_adaptive` and `off` all keep balancing; only
/// `always` stops it.
fn read_on_write(f: &Field) -> Result<bool, Diag> {
    let text = f.str("\"always\"")?;
    match text {
        // `dml_adaptive` tracks the tables written inside an explicit transaction: none here.
        "transaction" | "trans_transaction" | "dml_adaptive" | "off" => Ok(true),
        "always" => Ok(false),
        _ => Err(unknown(
            f,
            text,
            "disable_load_balance_on_write",
            &["transaction", "trans_transaction", "dml_adaptive", "always", "off"],
        )),
    }
}

fn read_weights(field: &Field, nodes: &[String]) -> Result<Vec<u32>, Diag> {
    let table = field.section().map_err(|e| e.help("write e.g. `backend_weight = { pg1 = 0, pg2 = 1 }`"))?;
    let mut weights = vec![1; nodes.len()];
    for (key, _) in &table.table.entries {
        let Some(index) = nodes.iter().position(|n| *n == key.name) else {
            return Err(Diag::new(format!("`{}` is not one of cluster.nodes", key.name), key.span.clone()).help(
                format!(
                    "{}the nodes are: {}",
                    did_you_mean(&key.name, nodes.iter().map(String::as_str)),
                    nodes.join(", ")
                ),
            ));
        };
        weights[index] = table.get(&key.name).expect("listed key").u64_in(0, 1_000_000, "1")? as u32;
    }
    Ok(weights)
}

fn unknown(f: &Field, text: &str, what: &str, names: &[&str]) -> Diag {
    f.error(format!("unknown {what} \"{text}\"")).help(format!(
        "{}expected one of: {}",
        did_you_mean(text, names.iter().copied()),
        names.join(", ")
    ))
}
