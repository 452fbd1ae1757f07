//! How the clients reach the nodes, as validated: a connection pooler (`[pooler]`) and
//! managed-service endpoints (`[endpoints]`). Part of the model (`model.rs` re-exports them).

/// `[endpoints]` (spec ha-and-routing §5.3): the writer record follows the control plane's
/// primary (HAProxy's check with `[ha]`, else the configured or promoted primary) after
/// `update_delay`; the reader record answers a running standby (the writer when there is none).
/// A client keeps its connection until it breaks or a query on it fails, and reconnects to a
/// cached answer while it is fresh.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointsSpec {
    pub dns_ttl_ns: u64,
    /// 0: clients obey the TTL. Else they keep an answer this long if that is longer than the
    /// TTL (the JVM's `networkaddress.cache.ttl`); `u64::MAX`: for ever.
    pub client_dns_cache_ns: u64,
    pub update_delay_ns: u64,
}

impl EndpointsSpec {
    /// How long a client uses an answer: its own cache's lifetime, but at least the TTL (a
    /// client that asks again sooner gets the answer its recursive resolver cached for the TTL).
    pub fn answer_lifetime_ns(&self) -> u64 {
        self.client_dns_cache_ns.max(self.dns_ttl_ns)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolerKind {
    Pgbouncer,
    Pgpool,
}

impl PoolerKind {
    pub fn name(self) -> &'static str {
        match self {
            PoolerKind::Pgbouncer => "pgbouncer",
            PoolerKind::Pgpool => "pgpool",
        }
    }
}

/// PgBouncer's `pool_mode`: a server connection is a client's for its whole session, or only
/// for each transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    Session,
    Transaction,
}

/// PgPool-II's read balancing: `load_balance_mode = off`, or on with the node chosen once per
/// session (`statement_level_load_balance = off`, the default) or per statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgpoolLoadBalance {
    Off,
    Session,
    Statement,
}

/// `[pooler]` (spec ha-and-routing §5.2). The pooler runs beside the clients, so the client to
/// pooler hop costs nothing and its connections to the nodes take the clients' latency.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolerSpec {
    pub kind: PoolerKind,
    /// PgBouncer: `pool_mode`, `default_pool_size` server connections per node,
    /// `max_client_conn` clients, `query_wait_timeout` (0: wait for ever).
    pub pool_mode: PoolMode,
    pub default_pool_size: u32,
    pub max_client_conn: u32,
    pub query_wait_timeout_ns: u64,
    /// Server CPU to start a backend for a new server connection.
    pub server_connect_cpu_ns: u64,
    /// PgPool-II: `num_init_children` client sessions served at once (the rest wait),
    /// `load_balance`, `backend_weight` per node (cluster order), `delay_threshold` (0: off)
    /// checked every `sr_check_period`, and whether reads balance after a session's write
    /// (`disable_load_balance_on_write` other than `always`).
    pub num_init_children: u32,
    pub load_balance: PgpoolLoadBalance,
    pub backend_weight: Vec<u32>,
    pub delay_threshold_bytes: u64,
    pub sr_check_period_ns: u64,
    pub balance_after_write: bool,
}
