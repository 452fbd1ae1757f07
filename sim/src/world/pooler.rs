//! The connection pooler's state (`[pooler]`, spec ha-and-routing §5.2): PgBouncer's pools of
//! server connections, one pool per node, and PgPool-II's child processes, each serving one
//! client session with its own connection to every node it uses, and its read balancing.
//! Pure bookkeeping: `world/pooling.rs` drives it from the client path.

use std::collections::{BTreeMap, VecDeque};

use repsim_engine::NodeId;

use crate::metrics::Recorder;
use crate::scenario::model::{PgpoolLoadBalance, PoolMode, PoolerKind, PoolerSpec};
use crate::world::rng::Rng;
use crate::world::workload::PlannedOp;

/// A server connection: the node incarnation it was opened to, and the session using it
/// (PgBouncer transaction mode: during one operation; session mode and PgPool-II: for good).
#[derive(Clone, Debug)]
struct ServerConn {
    incarnation: u64,
    user: Option<u32>,
}

/// A client waiting for a server connection (PgBouncer) or a child process (PgPool-II).
#[derive(Debug)]
pub struct Waiter {
    pub session: u32,
    pub planned: PlannedOp,
    /// Where the router sent it (a write goes to the primary known when it is served).
    pub node: NodeId,
    pub since_ns: u64,
}

/// What `acquire` gives a session for one operation on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// A connection is ready; `opened` when it is new and pays the start-up first.
    Ready { opened: bool },
    /// The pool is full: queue the operation.
    Wait,
    /// PgBouncer refuses the client: `max_client_conn` reached.
    Refused,
}

/// The pooler's measurements (bounded: a histogram, counters and one entry per second).
#[derive(Default)]
pub struct PoolStats {
    /// How long each operation waited for a server connection (0 when one was free).
    pub wait_ns: Recorder,
    pub waited_ops: u64,
    pub wait_timeouts: u64,
    pub clients_refused: u64,
    pub server_connects: u64,
    /// Server connections opened in each second of the run: a failover's connection storm.
    pub connects_by_second: BTreeMap<u64, u32>,
    pub max_waiting: usize,
    /// PgPool-II with `delay_threshold`: reads sent to a standby whose delay at that instant
    /// was past the threshold (the last `sr_check_period` sample was not).
    pub reads_past_delay_threshold: u64,
    pub reads_balanced_to_standbys: u64,
}

pub struct Pooler {
    pub spec: PoolerSpec,
    /// Per node, its server connections.
    servers: Vec<Vec<ServerConn>>,
    pub waiting: VecDeque<Waiter>,
    /// PgPool-II: the sessions holding a child process.
    has_child: Vec<bool>,
    children_held: u32,
    /// PgPool-II: each session's load-balance node (chosen at its first read).
    balance_node: Vec<Option<NodeId>>,
    /// PgPool-II: the session has sent a write (for `disable_load_balance_on_write = always`).
    pub wrote: Vec<bool>,
    /// PgPool-II: each standby's delay in bytes at the last `sr_check_period` check.
    pub sampled_delay_bytes: Vec<Option<u64>>,
    rng: Rng,
    pub stats: PoolStats,
}

impl Pooler {
    pub fn new(spec: PoolerSpec, nodes: usize, sessions: usize, rng: Rng) -> Pooler {
        Pooler {
            spec,
            servers: vec![Vec::new(); nodes],
            waiting: VecDeque::new(),
            has_child: vec![false; sessions],
            children_held: 0,
            balance_node: vec![None; sessions],
            wrote: vec![false; sessions],
            sampled_delay_bytes: vec![None; nodes],
            rng,
            stats: PoolStats::default(),
        }
    }

    /// A connection for `session` to `node`, whose running incarnation is `incarnation`.
    /// Connections to an earlier incarnation are dead: dropped here, as PgBouncer drops a
    /// server connection whose socket failed.
    pub fn acquire(&mut self, session: u32, node: NodeId, incarnation: u64) -> Acquired {
        let conns = &mut self.servers[node as usize];
        conns.retain(|c| c.incarnation == incarnation);
        match self.spec.kind {
            PoolerKind::Pgbouncer => {
                if session >= self.spec.max_client_conn {
                    return Acquired::Refused;
                }
                if conns.iter().any(|c| c.user == Some(session)) {
                    return Acquired::Ready { opened: false };
                }
                if let Some(free) = conns.iter_mut().find(|c| c.user.is_none()) {
                    free.user = Some(session);
                    return Acquired::Ready { opened: false };
                }
                if conns.len() < self.spec.default_pool_size as usize {
                    conns.push(ServerConn { incarnation, user: Some(session) });
                    return Acquired::Ready { opened: true };
                }
                Acquired::Wait
            }
            PoolerKind::Pgpool => {
                if !self.has_child[session as usize] {
                    if self.children_held >= self.spec.num_init_children {
                        return Acquired::Wait;
                    }
                    self.has_child[session as usize] = true;
                    self.children_held += 1;
                }
                if conns.iter().any(|c| c.user == Some(session)) {
                    return Acquired::Ready { opened: false };
                }
                conns.push(ServerConn { incarnation, user: Some(session) });
                Acquired::Ready { opened: true }
            }
        }
    }

    /// The operation of `session` on `node` ended: in transaction mode its server connection
    /// goes back to the pool. True when a connection was freed (a waiter may take it).
    pub fn release(&mut self, session: u32, node: NodeId) -> bool {
        if self.spec.kind != PoolerKind::Pgbouncer || self.spec.pool_mode != PoolMode::Transaction {
            return false;
        }
        let Some(conns) = self.servers.get_mut(node as usize) else { return false };
        let Some(conn) = conns.iter_mut().find(|c| c.user == Some(session)) else { return false };
        conn.user = None;
        true
    }

    /// Server connections on `node` in use by an operation or a session (for the oracle).
    pub fn in_use(&self, node: NodeId) -> usize {
        self.servers[node as usize].iter().filter(|c| c.user.is_some()).count()
    }

    pub fn opened(&mut self, now_ns: u64) {
        self.stats.server_connects += 1;
        *self.stats.connects_by_second.entry(now_ns / 1_000_000_000).or_insert(0) += 1;
    }

    pub fn enqueue(&mut self, waiter: Waiter) {
        self.waiting.push_back(waiter);
        self.stats.max_waiting = self.stats.max_waiting.max(self.waiting.len());
    }

    /// Removes and returns the waiter for `session`'s operation `op_id` waiting since
    /// `since_ns`, if it still waits.
    pub fn take_waiter(&mut self, session: u32, op_id: u64, since_ns: u64) -> Option<Waiter> {
        let index = self
            .waiting
            .iter()
            .position(|w| w.session == session && w.planned.op_id == op_id && w.since_ns == since_ns)?;
        self.waiting.remove(index)
    }

    /// PgPool-II: where a read of `session` goes. `candidates` are the nodes that can serve
    /// it (running standbys, and the primary if one is known); `None` when none can.
    pub fn pgpool_read_node(&mut self, session: u32, primary: Option<NodeId>, candidates: &[NodeId]) -> Option<NodeId> {
        let s = session as usize;
        if self.spec.load_balance == PgpoolLoadBalance::Off || (self.wrote[s] && !self.spec.balance_after_write) {
            return primary;
        }
        let keep = self.spec.load_balance == PgpoolLoadBalance::Session;
        let node = match self.balance_node[s].filter(|n| keep && candidates.contains(n)) {
            Some(node) => node,
            None => {
                let chosen = self.weighted(candidates).or(primary)?;
                self.balance_node[s] = Some(chosen);
                chosen
            }
        };
        // `delay_threshold`: a standby whose last sampled delay is past it sends reads to the
        // primary until it catches up.
        let threshold = self.spec.delay_threshold_bytes;
        let lagging = threshold > 0 && self.sampled_delay_bytes[node as usize].is_some_and(|d| d > threshold);
        match lagging {
            true => primary.or(Some(node)),
            false => Some(node),
        }
    }

    /// A node drawn by `backend_weight` among `candidates` (none when all weigh 0).
    fn weighted(&mut self, candidates: &[NodeId]) -> Option<NodeId> {
        let weight = |n: NodeId| u64::from(self.spec.backend_weight[n as usize]);
        let total: u64 = candidates.iter().map(|&n| weight(n)).sum();
        if total == 0 {
            return None;
        }
        let mut point = self.rng.below(total);
        for &n in candidates {
            if point < weight(n) {
                return Some(n);
            }
            point -= weight(n);
        }
        unreachable!("the point is below the total weight")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::rng::stream;

    fn spec(kind: PoolerKind, mode: PoolMode, size: u32) -> PoolerSpec {
        PoolerSpec {
            kind,
            pool_mode: mode,
            default_pool_size: size,
            max_client_conn: 4,
            query_wait_timeout_ns: 0,
            server_connect_cpu_ns: 0,
            num_init_children: size,
            load_balance: PgpoolLoadBalance::Session,
            backend_weight: vec![0, 1, 1],
            delay_threshold_bytes: 1000,
            sr_check_period_ns: 1,
            balance_after_write: true,
        }
    }

    fn pooler(kind: PoolerKind, mode: PoolMode, size: u32) -> Pooler {
        Pooler::new(spec(kind, mode, size), 3, 6, stream(1, "pooler"))
    }

    #[test]
    fn transaction_mode_shares_a_full_pool_and_reuses_freed_connections() {
        let mut p = pooler(PoolerKind::Pgbouncer, PoolMode::Transaction, 2);
        assert_eq!(p.acquire(0, 0, 1), Acquired::Ready { opened: true });
        assert_eq!(p.acquire(1, 0, 1), Acquired::Ready { opened: true });
        assert_eq!(p.acquire(2, 0, 1), Acquired::Wait);
        assert!(p.release(0, 0));
        assert_eq!(p.acquire(2, 0, 1), Acquired::Ready { opened: false }, "the freed connection is reused");
        assert_eq!(p.in_use(0), 2);
    }

    #[test]
    fn session_mode_keeps_a_connection_per_session_until_its_node_restarts() {
        let mut p = pooler(PoolerKind::Pgbouncer, PoolMode::Session, 1);
        assert_eq!(p.acquire(0, 0, 1), Acquired::Ready { opened: true });
        assert!(!p.release(0, 0), "session mode keeps the connection");
        assert_eq!(p.acquire(1, 0, 1), Acquired::Wait);
        assert_eq!(p.acquire(0, 0, 1), Acquired::Ready { opened: false });
        // The node restarted (incarnation 2): the old connection is dead, and a new one opens.
        assert_eq!(p.acquire(1, 0, 2), Acquired::Ready { opened: true });
    }

    #[test]
    fn clients_past_max_client_conn_are_refused() {
        let mut p = pooler(PoolerKind::Pgbouncer, PoolMode::Transaction, 20);
        assert_eq!(p.acquire(3, 0, 1), Acquired::Ready { opened: true });
        assert_eq!(p.acquire(4, 0, 1), Acquired::Refused);
    }

    #[test]
    fn pgpool_children_are_held_for_the_session_and_connect_per_node() {
        let mut p = pooler(PoolerKind::Pgpool, PoolMode::Session, 1);
        assert_eq!(p.acquire(0, 0, 1), Acquired::Ready { opened: true });
        assert_eq!(p.acquire(0, 1, 1), Acquired::Ready { opened: true }, "its own connection to another node");
        assert_eq!(p.acquire(0, 1, 1), Acquired::Ready { opened: false });
        assert_eq!(p.acquire(1, 0, 1), Acquired::Wait, "the only child is held by session 0");
    }

    #[test]
    fn pgpool_balances_by_weight_and_skips_a_standby_past_the_delay_threshold() {
        let mut p = pooler(PoolerKind::Pgpool, PoolMode::Session, 4);
        p.spec.load_balance = PgpoolLoadBalance::Statement;
        let mut seen = [0u32; 3];
        for _ in 0..1000 {
            seen[p.pgpool_read_node(0, Some(0), &[0, 1, 2]).unwrap() as usize] += 1;
        }
        assert_eq!(seen[0], 0, "the primary weighs 0");
        assert!(seen[1] > 400 && seen[2] > 400, "{seen:?}");
        p.sampled_delay_bytes[1] = Some(1001);
        p.sampled_delay_bytes[2] = Some(1001);
        assert_eq!(p.pgpool_read_node(0, Some(0), &[0, 1, 2]), Some(0), "both standbys are past delay_threshold");
        assert_eq!(p.pgpool_read_node(0, None, &[1, 2]).map(|n| n > 0), Some(true), "no primary: the standby serves");
    }

    #[test]
    fn pgpool_always_sends_reads_after_a_write_to_the_primary() {
        let mut p = pooler(PoolerKind::Pgpool, PoolMode::Session, 4);
        p.spec.balance_after_write = false;
        assert_ne!(p.pgpool_read_node(0, Some(0), &[0, 1, 2]), Some(0));
        p.wrote[0] = true;
        assert_eq!(p.pgpool_read_node(0, Some(0), &[0, 1, 2]), Some(0));
    }
}
