//! Client sessions: operations planned by the workload, routed (writes to the primary, reads
//! as the router says), answered, recorded in the history.

use std::io::Write;

use repsim_engine::io::{ClientId, Reply};
use repsim_engine::{Input, NodeId};

use crate::check::history::Outcome;
use crate::world::endpoints::Endpoint;
use crate::world::event::EventKind;
use crate::world::session::{InFlight, NO_NODE};
use crate::world::workload::{Op, PlannedOp};
use crate::world::World;

impl Outcome {
    pub(crate) fn from_reply(reply: Reply, split_brain: bool, released_at_ns: u64, timeline: u32) -> Outcome {
        match reply {
            Reply::Committed { commit_lsn, promise } => {
                Outcome::Committed { commit_lsn, promise, split_brain, released_at_ns, timeline }
            }
            Reply::RolledBack => Outcome::RolledBack,
            Reply::Read { value, read_lsn } => Outcome::Read { value, read_lsn },
            Reply::Error { kind: repsim_engine::io::ErrorKind::TooStale, .. } => Outcome::TooStale,
            Reply::Error { .. } => Outcome::Failed,
        }
    }
}

impl World {
    /// With `[endpoints]`: the DNS name an operation goes through. Writes, and reads under
    /// `router = "primary"`, use the writer endpoint; reads under `router = "replica"` the
    /// reader endpoint.
    pub(crate) fn endpoint_of(&self, op: &Op) -> Endpoint {
        let replica = self.scenario.workload.router == repsim_engine::client::RouterKind::Replica;
        if !op.is_write() && replica {
            Endpoint::Reader
        } else {
            Endpoint::Writer
        }
    }

    pub(crate) fn open_arrival(&mut self) {
        if self.workload.stopped {
            return;
        }
        let planned = self.workload.plan(self.now_ns);
        match self.workload.idle_sessions.pop_front() {
            Some(session) => self.send_op(session, planned),
            None if self.workload.backlog.len() < crate::world::workload::MAX_BACKLOG_OPS => {
                self.workload.backlog.push_back(planned)
            }
            None => self.workload.refused_ops += 1,
        }
        let gap = self.workload.next_arrival_gap_ns();
        self.queue.push_lone(self.now_ns + gap, EventKind::OpenArrival);
    }

    pub(crate) fn session_ready(&mut self, session: u32) {
        if self.workload.stopped {
            return;
        }
        let planned = self.workload.plan(self.now_ns);
        self.send_op(session, planned);
    }

    /// Where a session's requests go. Reads and writes both go to the configured primary for
    /// now (routers come with failover).
    /// Where an operation goes. Writes go to the primary; reads as the router says. A router
    /// that finds no standby sends the read to the primary.
    pub(crate) fn route(&mut self, op: &Op, session: u32) -> Option<NodeId> {
        use repsim_engine::client::RouterKind;
        let router = self.scenario.workload.router;
        let pinned =
            router == RouterKind::PinAfterWrite && self.now_ns < self.sessions[session as usize].pinned_until_ns;
        if self.endpoints.is_some() {
            return self.endpoint_route(session, self.endpoint_of(op));
        }
        if let Some(master) = self.other_master_of(session) {
            return Some(master);
        }
        let pgpool = self.pooler.as_ref().is_some_and(|p| p.spec.kind == crate::scenario::model::PoolerKind::Pgpool);
        if pgpool && !op.is_write() {
            // PgPool-II routes every read (to the primary when `load_balance = "off"`).
            return self.pgpool_route_read(session);
        }
        if op.is_write() || router == RouterKind::Primary || pinned {
            return self.router_primary;
        }
        let primary = self.router_primary;
        let threshold = self.scenario.workload.delay_threshold_bytes;
        let candidates: Vec<NodeId> = (0..self.nodes.len() as NodeId)
            .filter(|&n| {
                let serving = self.nodes[n as usize]
                    .engine
                    .as_ref()
                    .is_some_and(|e| matches!(e.role(), repsim_engine::Role::Standby) || Some(n) == primary);
                let standby = Some(n) != primary;
                let lag_ok =
                    self.standby_lag_bytes.get(n as usize).copied().flatten().is_none_or(|lag| lag <= threshold);
                serving
                    && match router {
                        RouterKind::RoundRobin => true,
                        RouterKind::LagAware => standby && lag_ok,
                        _ => standby,
                    }
            })
            .collect();
        if candidates.is_empty() {
            return primary;
        }
        self.read_cursor = self.read_cursor.wrapping_add(1);
        Some(candidates[self.read_cursor % candidates.len()])
    }

    pub(crate) fn send_op(&mut self, session: u32, planned: PlannedOp) {
        if planned.op.is_write() {
            self.metrics.unavailable.invoked(planned.intended_ns);
            self.sessions[session as usize].wrote = true;
            if let Some(pool) = self.pooler.as_mut() {
                pool.wrote[session as usize] = true;
            }
        }
        let Some(node) = self.route(&planned.op, session) else {
            // The proxy has no healthy primary: the connection is refused at once.
            return self.refuse(session, planned);
        };
        if self.endpoints.is_some() && self.endpoint_of(&planned.op) == Endpoint::Writer {
            self.endpoint_sent(node);
        }
        match self.pooler.is_some() {
            true => self.pooled_send(session, planned, node, None),
            false => self.dispatch(session, planned, node, self.now_ns, false),
        }
    }

    /// No server takes the operation: the client hears so after one trip.
    pub(crate) fn refuse(&mut self, session: u32, planned: PlannedOp) {
        let at = self.now_ns + self.net.sample_client_latency(None);
        let op_id = planned.op_id;
        self.sessions[session as usize].current = Some(InFlight::unsent(planned, self.now_ns));
        self.schedule(at, EventKind::ReplyArrives { session, op_id, outcome: Outcome::Failed });
    }

    /// Sends the operation to `node`, leaving at `start_ns` (later than now when a pooler
    /// opens a server connection first); `pooled` when it holds a pooler's connection.
    pub(crate) fn dispatch(&mut self, session: u32, planned: PlannedOp, node: NodeId, start_ns: u64, pooled: bool) {
        let incarnation = self.nodes[node as usize].incarnation;
        let op_id = planned.op_id;
        let s = &mut self.sessions[session as usize];
        s.pool_served |= pooled;
        s.current = Some(InFlight {
            planned,
            node,
            incarnation,
            sent_ns: self.now_ns,
            arrived_ns: 0,
            sync_ok_at_arrival: false,
            pooled,
        });
        let at = start_ns + self.net.sample_client_latency(Some(node));
        self.schedule(at, EventKind::RequestArrives { session, op_id });
        let cancel_after_ns = self.scenario.workload.cancel_after_ns;
        if cancel_after_ns > 0 {
            self.schedule(self.now_ns + cancel_after_ns, EventKind::CancelDue { session, op_id });
        }
    }

    /// The session still waits for `op_id`: it sends a cancel request to the node it asked,
    /// over a new connection, and goes on waiting for the answer to the operation.
    pub(crate) fn cancel_due(&mut self, session: u32, op_id: u64) {
        let Some(flight) = self.sessions[session as usize].current.as_ref().filter(|f| f.planned.op_id == op_id) else {
            return; // answered in time
        };
        let (node, incarnation) = (flight.node, flight.incarnation);
        if node == NO_NODE || !self.is_up(node) || self.nodes[node as usize].incarnation != incarnation {
            return; // the connection attempt fails; the operation fails on its own
        }
        self.metrics.cancel_requests += 1;
        let request = repsim_engine::io::Request::Cancel { op_id };
        let input = Input::Client { client: ClientId(session as u64), op_id, request };
        let at = self.now_ns + self.net.sample_client_latency(Some(node));
        self.schedule(at, EventKind::Input { node, incarnation, input });
    }

    pub(crate) fn request_arrives(&mut self, session: u32, op_id: u64) {
        let Some(flight) = self.sessions[session as usize].current.as_ref().filter(|f| f.planned.op_id == op_id) else {
            return; // the operation ended while its request was held back
        };
        let node = flight.node;
        // A pooler's server connection to an earlier incarnation of the node died with it: the
        // query fails on the dead socket without running.
        let dead_connection =
            flight.pooled && self.nodes.get(node as usize).is_some_and(|n| n.incarnation != flight.incarnation);
        if node == NO_NODE || !self.is_up(node) || dead_connection {
            // Connection refused.
            let at = self.now_ns + self.net.sample_client_latency((node != NO_NODE).then_some(node));
            self.schedule(at, EventKind::ReplyArrives { session, op_id, outcome: Outcome::Failed });
            return;
        }
        let incarnation = self.nodes[node as usize].incarnation;
        let sync_ok = self.scenario.expect.max_commit_wait_ns.is_some() && self.enough_sync_standbys(node);
        if let Some(flight) = self.sessions[session as usize].current.as_mut() {
            flight.arrived_ns = self.now_ns;
            flight.sync_ok_at_arrival = sync_ok;
        }
        let spec = &self.scenario.nodes[node as usize];
        let flight = self.sessions[session as usize].current.as_mut().expect("checked above");
        flight.incarnation = incarnation;
        let mut request = flight.planned.op.request(self.scenario.workload.value_size_bytes);
        let cost = match (&flight.planned.op, &request) {
            // A capture trigger runs an INSERT into the change table per captured row.
            (Op::Write { .. }, repsim_engine::io::Request::Write { changes, .. }) => {
                let captured = self.nodes[node as usize]
                    .config
                    .trigger_capture
                    .as_ref()
                    .map_or(0, |tables| changes.iter().filter(|c| tables.publishes(c.row().0)).count() as u64);
                (2 + captured) * spec.statement_cpu_ns + spec.commit_cpu_ns
            }
            (Op::Write { .. }, _) => 2 * spec.statement_cpu_ns + spec.commit_cpu_ns,
            (Op::Read { .. }, _) => spec.read_cpu_ns,
        };
        use repsim_engine::io::Request;
        match &mut request {
            Request::Write { synchronous_commit, .. } => {
                *synchronous_commit = self.scenario.workload.session_level(session)
            }
            Request::Read { duration_ns, .. } => *duration_ns = flight.planned.read_duration_ns,
            Request::ReadAfter { .. } | Request::Cancel { .. } => {}
        }
        let ryw = self.scenario.workload.router == repsim_engine::client::RouterKind::ReadYourWrites;
        if let (true, &Request::Read { table, key, duration_ns }) = (ryw, &request) {
            let (min_timeline, min_lsn) = self.sessions[session as usize].last_commit;
            let wait_ns = self.scenario.workload.read_wait_ns;
            request = Request::ReadAfter { table, key, min_timeline, min_lsn, wait_ns, duration_ns };
        }
        let done = self.nodes[node as usize].cpu.backend(self.now_ns, cost);
        let input = Input::Client { client: ClientId(session as u64), op_id, request };
        self.schedule(done, EventKind::Input { node, incarnation, input });
    }

    pub(crate) fn reply_arrives(&mut self, session: u32, op_id: u64, outcome: Outcome) {
        let slot = &mut self.sessions[session as usize];
        if slot.current.as_ref().map(|f| f.planned.op_id) != Some(op_id) {
            return; // a late reply for an operation already given up on
        }
        let flight = slot.current.take().expect("checked");
        if flight.pooled {
            self.pool_done(session, flight.node);
        }
        if self.endpoints.is_some() && matches!(outcome, Outcome::Failed | Outcome::Indeterminate) {
            self.endpoint_failed(session, self.endpoint_of(&flight.planned.op));
        }
        if outcome == Outcome::TooStale {
            // read_your_writes: the standby did not catch up in time; read from the primary.
            let Some(primary) = self.router_primary else {
                return self.reply_arrives_failed(session, flight);
            };
            if self.pooler.is_some() {
                return self.pooled_send(session, flight.planned, primary, None);
            }
            let incarnation = self.nodes[primary as usize].incarnation;
            let retry = InFlight { node: primary, incarnation, sent_ns: self.now_ns, ..flight };
            self.sessions[session as usize].current = Some(retry);
            let at = self.now_ns + self.net.sample_client_latency(Some(primary));
            let op_id = self.sessions[session as usize].current.as_ref().map_or(0, |f| f.planned.op_id);
            return self.schedule(at, EventKind::RequestArrives { session, op_id });
        }
        let latency_ns = self.now_ns - flight.planned.intended_ns;
        if let (Op::Write { write_id, key, .. }, Outcome::Committed { .. }, true) =
            (&flight.planned.op, &outcome, self.scenario.logical.multi_master.is_some())
        {
            self.master_writes.acked(*key, *write_id, flight.planned.intended_ns, self.now_ns);
        }
        // Another master's clients are outside the physical cluster's history: its checks
        // would take their writes for the cluster's (`check::multimaster` judges them).
        let physical = self.other_master_of(session).is_none();
        if physical {
            self.check_read_or_write(session, &flight, &outcome);
        }
        if flight.planned.op.is_write() {
            let acked = matches!(outcome, Outcome::Committed { .. });
            self.metrics.unavailable.finished(self.now_ns, acked);
        }
        match &outcome {
            Outcome::Committed { promise, .. } => {
                self.metrics.committed_locally_unconfirmed += promise.wait_cancelled as u64;
                self.metrics.commit(self.now_ns, latency_ns)
            }
            Outcome::Read { .. } => self.metrics.read(self.now_ns, latency_ns),
            Outcome::RolledBack => self.metrics.rollbacks += 1,
            Outcome::Failed => self.metrics.failed_ops += 1,
            Outcome::Indeterminate => self.metrics.indeterminate_ops += 1,
            Outcome::TooStale => unreachable!("retried above"),
        }
        if physical {
            self.history.record(&flight.planned.op, flight.node, flight.arrived_ns, &outcome);
        }
        self.write_history_line(session, &flight, &outcome);
        self.next_for_session(session);
    }

    /// `[multi_master]`: the master a session uses, when it is not the cluster's primary.
    pub(crate) fn other_master_of(&self, session: u32) -> Option<NodeId> {
        let master = self.scenario.logical.multi_master.as_ref()?.master_of_session(session);
        (master != self.scenario.cluster.primary).then_some(master as NodeId)
    }

    /// `--history`: invoke and completion times, outcome, node, LSN and value of one operation.
    pub(crate) fn write_history_line(&mut self, session: u32, flight: &InFlight, outcome: &Outcome) {
        let Some(sink) = self.history_sink.as_mut() else { return };
        let (kind, write_id, key) = match flight.planned.op {
            Op::Write { write_id, key, .. } => ("write", write_id, key),
            Op::Read { key } => ("read", 0, key),
        };
        let (result, lsn, value) = match outcome {
            Outcome::Committed { commit_lsn, .. } => ("ok", commit_lsn.to_string(), write_id),
            Outcome::Read { value, read_lsn } => ("ok", read_lsn.to_string(), value.map_or(0, |v| v.write_id)),
            Outcome::RolledBack => ("rolled_back", String::new(), write_id),
            Outcome::Failed | Outcome::TooStale => ("failed", String::new(), 0),
            Outcome::Indeterminate => ("indeterminate", String::new(), 0),
        };
        let node = self.nodes.get(flight.node as usize).map_or("", |s| s.name.as_str());
        let line = serde_json::json!({
            "session": session, "op_id": flight.planned.op_id, "kind": kind, "key": key,
            "invoke_ns": flight.planned.intended_ns, "complete_ns": self.now_ns,
            "outcome": result, "node": node, "lsn": lsn, "value_write_id": value,
        });
        if let Err(e) = writeln!(sink, "{line}") {
            self.history_sink = None;
            self.history_error.get_or_insert(format!("cannot write the history file: {e}"));
        }
    }

    pub(crate) fn reply_arrives_failed(&mut self, session: u32, flight: InFlight) {
        self.metrics.failed_ops += 1;
        self.history.record(&flight.planned.op, flight.node, flight.arrived_ns, &Outcome::Failed);
        self.next_for_session(session);
    }

    pub(crate) fn next_for_session(&mut self, session: u32) {
        if self.workload.stopped {
            return;
        }
        if self.workload.is_open_loop() {
            match self.workload.backlog.pop_front() {
                Some(planned) => self.send_op(session, planned),
                None => self.workload.idle_sessions.push_back(session),
            }
        } else {
            let think = self.workload.think_ns();
            self.schedule(self.now_ns + think, EventKind::SessionReady { session });
        }
    }
}
