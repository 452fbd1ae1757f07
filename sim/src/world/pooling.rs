//! The pooler at work on the client path (`[pooler]`): an operation takes a server connection
//! (opening one costs round trips and backend start-up CPU on the node) or waits for one;
//! PgBouncer answers a client that waited past `query_wait_timeout` with an error; PgPool-II
//! balances reads and checks standby delay every `sr_check_period`. One live oracle,
//! `pooler_rules`, judges the pooler's limits and PgPool-II's routing rule from the world's
//! own view of the sessions, not from the pool's bookkeeping.

use repsim_engine::{NodeId, Role};

use crate::check::history::Outcome;
use crate::scenario::model::PoolerKind;
use crate::world::event::EventKind;
use crate::world::pooler::{Acquired, Waiter};
use crate::world::session::{InFlight, NO_NODE};
use crate::world::workload::PlannedOp;
use crate::world::World;

impl World {
    /// Sends `planned` to `node` through the pooler: at once on a free connection, after the
    /// start-up of a new one, or later from the wait queue. `waiting_since_ns`: when a queued
    /// operation began to wait (`None`: it has not waited yet).
    pub(crate) fn pooled_send(
        &mut self,
        session: u32,
        planned: PlannedOp,
        node: NodeId,
        waiting_since_ns: Option<u64>,
    ) {
        if !self.is_up(node) {
            // The pooler's connection attempt fails: the client gets the error.
            return self.dispatch(session, planned, node, self.now_ns, false);
        }
        let since_ns = waiting_since_ns.unwrap_or(self.now_ns);
        let incarnation = self.nodes[node as usize].incarnation;
        let pool = self.pooler.as_mut().expect("pooled_send needs a pooler");
        match pool.acquire(session, node, incarnation) {
            Acquired::Ready { opened } => {
                pool.stats.wait_ns.record(self.now_ns - since_ns);
                pool.stats.waited_ops += u64::from(waiting_since_ns.is_some());
                let start_ns = if opened { self.open_server_connection(node) } else { self.now_ns };
                self.dispatch(session, planned, node, start_ns, true);
                self.check_pool_limits(session, node, since_ns);
            }
            Acquired::Wait => {
                let op_id = planned.op_id;
                pool.enqueue(Waiter { session, planned, node, since_ns });
                let timeout_ns = pool.spec.query_wait_timeout_ns;
                if waiting_since_ns.is_none() && pool.spec.kind == PoolerKind::Pgbouncer && timeout_ns > 0 {
                    self.schedule(since_ns + timeout_ns, EventKind::PoolWaitTimeout { session, op_id, since_ns });
                }
            }
            Acquired::Refused => {
                pool.stats.clients_refused += 1;
                self.refuse(session, planned);
            }
        }
    }

    /// A new server connection to `node`: TCP and the start-up message, the backend's fork
    /// and authentication on the node's CPU, then the authentication exchange (SCRAM: two
    /// more round trips). Returns when the connection is ready for the first query.
    fn open_server_connection(&mut self, node: NodeId) -> u64 {
        let one_way_ns = self.net.sample_client_latency(Some(node));
        let cpu_ns = self.pooler.as_ref().map_or(0, |p| p.spec.server_connect_cpu_ns);
        let forked_ns = self.nodes[node as usize].cpu.backend(self.now_ns + 2 * one_way_ns, cpu_ns);
        if let Some(pool) = self.pooler.as_mut() {
            pool.opened(self.now_ns);
        }
        forked_ns + 4 * one_way_ns
    }

    /// The operation of `session` on `node` ended: its connection may go back to the pool,
    /// and waiting clients may take one.
    pub(crate) fn pool_done(&mut self, session: u32, node: NodeId) {
        let Some(pool) = self.pooler.as_mut() else { return };
        if node != NO_NODE {
            pool.release(session, node);
        }
        self.serve_waiters();
    }

    /// Tries every waiting client again, oldest first. A waiting write goes to the primary the
    /// router knows now (PgBouncer connects to the address it is given, which a proxy or a DNS
    /// name follows); a read keeps the node it was routed to. With no primary known, a write
    /// is refused. Run when an operation ends and on every lag sample (PgBouncer's janitor),
    /// so that connections freed by a node's restart reach the waiters too.
    pub(crate) fn serve_waiters(&mut self) {
        let Some(pool) = self.pooler.as_mut() else { return };
        if pool.waiting.is_empty() {
            return;
        }
        for waiter in std::mem::take(&mut pool.waiting) {
            let node = if waiter.planned.op.is_write() { self.router_primary } else { Some(waiter.node) };
            match node {
                Some(node) => self.pooled_send(waiter.session, waiter.planned, node, Some(waiter.since_ns)),
                // HAProxy has no primary: PgBouncer's connection to it is refused.
                None => self.refuse(waiter.session, waiter.planned),
            }
        }
    }

    /// `query_wait_timeout`: PgBouncer answers a client still waiting with an error.
    pub(crate) fn pool_wait_timeout(&mut self, session: u32, op_id: u64, since_ns: u64) {
        let Some(pool) = self.pooler.as_mut() else { return };
        // A retry of the same operation (read_your_writes' TooStale) waits on a timer of its own.
        let Some(waiter) = pool.take_waiter(session, op_id, since_ns) else { return };
        pool.stats.wait_timeouts += 1;
        pool.stats.waited_ops += 1;
        pool.stats.wait_ns.record(self.now_ns - waiter.since_ns);
        self.sessions[session as usize].current = Some(InFlight::unsent(waiter.planned, self.now_ns));
        self.reply_arrives(session, op_id, Outcome::Failed);
    }

    /// PgPool-II's streaming-replication check (`sr_check_period`): each standby's delay is
    /// the primary's `pg_current_wal_lsn()` less the standby's `pg_last_wal_replay_lsn()`.
    pub(crate) fn pgpool_check(&mut self) {
        let Some(period_ns) = self.pooler.as_ref().map(|p| p.spec.sr_check_period_ns) else { return };
        let delays: Vec<Option<u64>> = (0..self.nodes.len() as NodeId).map(|n| self.delay_bytes(n)).collect();
        if let Some(pool) = self.pooler.as_mut() {
            pool.sampled_delay_bytes = delays;
        }
        if self.now_ns + period_ns <= self.end_ns {
            self.schedule(self.now_ns + period_ns, EventKind::PgpoolCheck);
        }
    }

    /// How far `node`, a running standby, has replayed behind the primary's WAL, in bytes.
    fn delay_bytes(&self, node: NodeId) -> Option<u64> {
        let primary = self.router_primary?;
        let insert =
            self.nodes[primary as usize].engine.as_ref().filter(|e| e.role() == Role::Primary)?.status().insert_lsn;
        let standby = self.nodes[node as usize].engine.as_ref().filter(|e| e.role() == Role::Standby)?;
        Some(insert.0.saturating_sub(standby.status().replay_lsn.0))
    }

    /// PgPool-II's choice for a read of `session`: a running standby or the primary, by
    /// `backend_weight`. Counts reads sent to a standby whose delay right now is past
    /// `delay_threshold` (the check that let them through is up to `sr_check_period` old).
    pub(crate) fn pgpool_route_read(&mut self, session: u32) -> Option<NodeId> {
        let primary = self.router_primary;
        let candidates: Vec<NodeId> = (0..self.nodes.len() as NodeId)
            .filter(|&n| {
                Some(n) == primary
                    || (self.is_up(n)
                        && self.nodes[n as usize].engine.as_ref().is_some_and(|e| e.role() == Role::Standby))
            })
            .collect();
        let delay_now = |world: &World, n: NodeId| world.delay_bytes(n);
        let pool = self.pooler.as_mut()?;
        let node = pool.pgpool_read_node(session, primary, &candidates)?;
        if Some(node) != primary {
            let threshold = pool.spec.delay_threshold_bytes;
            pool.stats.reads_balanced_to_standbys += 1;
            if threshold > 0 && delay_now(self, node).is_some_and(|d| d > threshold) {
                self.pooler.as_mut().expect("checked").stats.reads_past_delay_threshold += 1;
            }
            self.check_balance_after_write(session, node);
        }
        Some(node)
    }

    /// `pooler_rules`: no more operations run at once on a node than its pool has server
    /// connections (PgBouncer), or sessions than PgPool-II has children; no client past
    /// `max_client_conn` is served; nobody waited past `query_wait_timeout`. Counted from the
    /// sessions' operations in flight, not from the pool's own bookkeeping.
    fn check_pool_limits(&mut self, session: u32, node: NodeId, since_ns: u64) {
        // The limits only (this runs once per operation: no copy of the spec).
        let Some(spec) = self.pooler.as_ref().map(|p| Limits::of(&p.spec)) else { return };
        let pooled = |f: &&InFlight| f.pooled;
        let flights = self.sessions.iter().filter_map(|s| s.current.as_ref()).filter(pooled);
        let (limit, running, what) = match spec.kind {
            PoolerKind::Pgbouncer => {
                // Operations on connections that died with an earlier incarnation hold none.
                let incarnation = self.nodes[node as usize].incarnation;
                let on_node = flights.filter(|f| f.node == node && f.incarnation == incarnation).count();
                (spec.default_pool_size as usize, on_node, format!("operations on {}", self.nodes[node as usize].name))
            }
            PoolerKind::Pgpool => {
                (spec.num_init_children as usize, self.pool_sessions_served(), "sessions served".into())
            }
        };
        let now = self.now_ns;
        if running > limit {
            self.live.record("pooler_rules", now, || format!("{running} {what} at once; the pool allows {limit}"));
        }
        if spec.kind == PoolerKind::Pgbouncer && session >= spec.max_client_conn {
            self.live.record("pooler_rules", now, || {
                format!(
                    "session {session} was served; max_client_conn = {} admits sessions 0..{}",
                    spec.max_client_conn, spec.max_client_conn
                )
            });
        }
        let waited_ns = now - since_ns;
        if spec.kind == PoolerKind::Pgbouncer
            && spec.query_wait_timeout_ns > 0
            && waited_ns > spec.query_wait_timeout_ns
        {
            self.live.record("pooler_rules", now, || {
                format!(
                    "session {session} waited {:.3} s for a server connection; query_wait_timeout is {:.3} s",
                    waited_ns as f64 / 1e9,
                    spec.query_wait_timeout_ns as f64 / 1e9
                )
            });
        }
    }

    /// Sessions that have had an operation served through the pool so far (PgPool-II keeps
    /// a session's child until it disconnects, which clients here never do).
    fn pool_sessions_served(&self) -> usize {
        self.sessions.iter().filter(|s| s.pool_served).count()
    }

    /// `pooler_rules` for PgPool-II's `disable_load_balance_on_write = always`: after a
    /// session's write, none of its reads goes to a standby.
    fn check_balance_after_write(&mut self, session: u32, node: NodeId) {
        let always = self.pooler.as_ref().is_some_and(|p| !p.spec.balance_after_write);
        if always && self.sessions[session as usize].wrote {
            let name = self.nodes[node as usize].name.clone();
            self.live.record("pooler_rules", self.now_ns, || {
                format!("session {session} read from standby {name} after its write (disable_load_balance_on_write = always)")
            });
        }
    }

    /// The pooler's own check, once per lag sample: no client has waited past
    /// `query_wait_timeout` without an answer.
    pub(crate) fn check_pool_waits(&mut self) {
        self.serve_waiters();
        let Some(pool) = self.pooler.as_ref() else { return };
        let timeout_ns = pool.spec.query_wait_timeout_ns;
        if pool.spec.kind != PoolerKind::Pgbouncer || timeout_ns == 0 {
            return;
        }
        let now = self.now_ns;
        // One tick of slack: the timeout event at exactly the deadline may come after this one.
        if let Some(w) = pool.waiting.iter().find(|w| now > w.since_ns + timeout_ns + 1) {
            let (session, waited_ns) = (w.session, now - w.since_ns);
            self.live.record("pooler_rules", now, || {
                format!("session {session} has waited {:.3} s for a server connection with no answer; query_wait_timeout is {:.3} s", waited_ns as f64 / 1e9, timeout_ns as f64 / 1e9)
            });
        }
    }
}

/// The pooler's limits that `pooler_rules` judges.
#[derive(Clone, Copy)]
struct Limits {
    kind: PoolerKind,
    default_pool_size: u32,
    num_init_children: u32,
    max_client_conn: u32,
    query_wait_timeout_ns: u64,
}

impl Limits {
    fn of(spec: &crate::scenario::model::PoolerSpec) -> Limits {
        Limits {
            kind: spec.kind,
            default_pool_size: spec.default_pool_size,
            num_init_children: spec.num_init_children,
            max_client_conn: spec.max_client_conn,
            query_wait_timeout_ns: spec.query_wait_timeout_ns,
        }
    }
}
