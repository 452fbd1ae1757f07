//! The logical walsender (`walsender.c` in logical mode, with the pgoutput plugin): a
//! subscriber's apply worker sends `START_REPLICATION SLOT s LOGICAL lsn (publication_names
//! …)`; the walsender decodes flushed WAL from the slot's `restart_lsn` and sends each
//! committed transaction with published changes once it is flushed here (`WalSndWaitForWal`
//! waits for flush), skipping what the subscriber already confirmed. The subscriber's status
//! updates move the slot's `confirmed_flush_lsn` and, once safe, its `restart_lsn`.

use crate::io::{Instant, NodeId, Observation, Output};
use crate::logical::apply::ApplyState;
use crate::logical::decode::{Decoder, PublishedTables};
use crate::lsn::Lsn;
use crate::message::Message;
use crate::node::{Node, Role};

/// One logical stream this node serves.
#[derive(Debug)]
pub struct LogicalSender {
    pub slot: String,
    decoder: Decoder,
    /// End of the last transaction sent, or of the WAL the last keepalive covered (or the
    /// point streaming started from).
    pub sent_end: Lsn,
    /// Walsender slot order (shared with physical walsenders: sync-rep ties go by it).
    pub order: u32,
    /// The subscriber's stream this walsender serves (echoed in what it sends).
    pub stream: u64,
    /// What the subscriber last reported: received (write), flushed, applied.
    pub write: Lsn,
    pub flush: Lsn,
    pub apply: Lsn,
    /// The `wal_end` of the last keepalive sent.
    keepalive_end: Lsn,
}

impl LogicalSender {
    /// Whether it counts for synchronous replication: its subscriber reported a flush.
    pub fn is_sync_eligible(&self) -> bool {
        self.flush.is_valid()
    }
}

impl Node {
    /// Whether a stream other than the logical one being closed runs on this node's
    /// connection with `peer`: PostgreSQL gives every walsender, walreceiver and apply worker a
    /// connection of its own, the simulated network has one per pair of nodes, so where two
    /// masters subscribe to each other both logical streams share it. Closing one stream then
    /// must not close the connection: the worker says so in a message
    /// ([`Message::EndLogicalStream`]), a walsender's error alone ends the worker's stream.
    /// `as_worker`: the stream closing is this node's apply worker's (else its walsender's).
    pub(crate) fn shares_connection(&self, peer: NodeId, as_worker: bool) -> bool {
        let physical = self.walsenders.contains_key(&peer) || self.is_upstream(peer);
        let other_logical = match as_worker {
            true => self.logical_senders.contains_key(&peer),
            false => self.apply_workers.get(&peer).is_some_and(|w| w.state == ApplyState::Streaming),
        };
        physical || other_logical
    }

    /// A walsender's error ends the subscriber's logical stream: the error, then the closed
    /// connection, unless another stream shares it ([`Node::shares_connection`]).
    pub(crate) fn end_logical_stream_with_error(&self, peer: NodeId, text: String, out: &mut Vec<Output>) {
        out.push(Output::Send { to: peer, msg: Message::Error { text } });
        if !self.shares_connection(peer, false) {
            out.push(Output::Disconnect { peer });
        }
    }

    /// A subscriber's worker ended stream `stream`: its walsender here ends (and any copy
    /// still owed to it), as a walsender does when its connection closes.
    pub(crate) fn on_end_logical_stream(&mut self, peer: NodeId, stream: u64) {
        if self.logical_senders.get(&peer).is_some_and(|s| s.stream == stream) {
            self.logical_senders.remove(&peer);
        }
        self.pending_copies.retain(|(p, ..)| *p != peer);
    }

    /// The tables `publications` cover together, or the first name that is not a publication.
    pub(crate) fn published_tables(&self, publications: &[String]) -> Result<PublishedTables, String> {
        let mut tables = Vec::new();
        for name in publications {
            match self.cfg.publications.iter().find(|p| p.name == *name).map(|p| &p.tables) {
                None => return Err(name.clone()),
                Some(PublishedTables::All) => return Ok(PublishedTables::All),
                Some(PublishedTables::Tables(t)) => tables.extend(t.iter().copied()),
            }
        }
        tables.sort_unstable();
        tables.dedup();
        Ok(PublishedTables::Tables(tables))
    }

    /// The row filters of `publications` (PostgreSQL ORs them per table; a publication that
    /// lists a table without one publishes the table whole).
    pub(crate) fn row_filters(&self, publications: &[String]) -> crate::logical::decode::RowFilters {
        crate::logical::decode::RowFilters::of(&self.cfg.publications, publications)
    }

    pub(crate) fn on_start_logical(
        &mut self,
        now: Instant,
        peer: NodeId,
        slot: String,
        (start, publications, origin_none, stream): (Lsn, Vec<String>, bool, u64),
        out: &mut Vec<Output>,
    ) {
        let refuse = |text: String, out: &mut Vec<Output>| {
            out.push(Output::Observe(Observation::LogicalSlot {
                name: slot.clone(),
                text: format!("refused: {text}"),
            }));
            self.end_logical_stream_with_error(peer, text, out);
        };
        if self.role != Role::Primary {
            return refuse("logical decoding cannot be used while in recovery".into(), out);
        }
        let Some(s) = self.logical_slots.get(&slot) else {
            return refuse(format!("replication slot \"{slot}\" does not exist"), out);
        };
        if s.invalidated.is_some() {
            return refuse(format!("can no longer get changes from replication slot \"{slot}\""), out);
        }
        if let Some((other, _)) = self.logical_senders.iter().find(|(p, l)| **p != peer && l.slot == slot) {
            return refuse(format!("replication slot \"{slot}\" is active for the connection from node {other}"), out);
        }
        let tables = match self.published_tables(&publications) {
            Ok(tables) => tables,
            Err(name) => return refuse(format!("publication \"{name}\" does not exist"), out),
        };
        // A start before what the slot confirmed is moved up to it (`CreateDecodingContext`).
        let skip_through = start.max(s.confirmed_flush_lsn);
        let mut decoder = Decoder::new(s.restart, skip_through, tables);
        decoder.origin_none = origin_none;
        decoder.row_filters = self.row_filters(&publications);
        let order = self.next_walsender_slot;
        self.next_walsender_slot += 1;
        let none = Lsn::INVALID;
        let sender = LogicalSender {
            slot,
            decoder,
            sent_end: skip_through,
            order,
            stream,
            write: none,
            flush: none,
            apply: none,
            keepalive_end: none,
        };
        self.logical_senders.insert(peer, sender);
        self.send_logical(now, peer, out);
    }

    /// Decodes what was flushed since the last call and sends the transactions it commits.
    pub(crate) fn send_logical(&mut self, now: Instant, peer: NodeId, out: &mut Vec<Output>) {
        let Some(sender) = self.logical_senders.get(&peer) else { return };
        let failover = self.logical_slots.get(&sender.slot).is_some_and(|s| s.failover);
        let limit = self.logical_send_limit(failover);
        let Some(sender) = self.logical_senders.get_mut(&peer) else { return };
        let stream = sender.stream;
        match sender.decoder.decode(&self.wal, limit, usize::MAX) {
            Ok(txns) => {
                for txn in txns {
                    sender.sent_end = txn.end_lsn;
                    out.push(Output::Send {
                        to: peer,
                        msg: Message::LogicalTxn { txn, wal_end: limit, send_time_ns: now.0, stream },
                    });
                }
                // Caught up, it waits for more WAL; a subscriber that has not confirmed what
                // was sent gets a keepalive saying how far decoding went, so that it can
                // confirm WAL that held nothing published (`WalSndWaitForWal`; its replies
                // move the slot, and release synchronous commits that changed no published
                // table).
                let decoded = sender.decoder.point.at;
                if decoded > sender.keepalive_end && sender.write < decoded && sender.flush < decoded {
                    sender.keepalive_end = decoded;
                    sender.sent_end = sender.sent_end.max(decoded);
                    let msg = Message::LogicalKeepalive { wal_end: decoded, send_time_ns: now.0, stream };
                    out.push(Output::Send { to: peer, msg });
                }
            }
            Err(e) => {
                let text = format!("could not decode WAL for replication slot \"{}\": {e:?}", sender.slot);
                self.logical_senders.remove(&peer);
                self.end_logical_stream_with_error(peer, text, out);
            }
        }
    }

    pub(crate) fn send_to_all_logical_senders(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.logical_senders.is_empty() {
            return;
        }
        let peers: Vec<NodeId> = self.logical_senders.keys().copied().collect();
        for peer in peers {
            self.send_logical(now, peer, out);
        }
    }

    /// A subscriber's status update: it has flushed everything it applied through `flush`.
    /// A subscription named in `synchronous_standby_names` (by its `application_name`, the
    /// subscription's name, which is its slot's by default) is a synchronous standby like a
    /// physical one: commits wait for its reports (PostgreSQL's `syncrep.c` reads every
    /// walsender's positions, logical ones too).
    pub(crate) fn on_logical_status(
        &mut self,
        peer: NodeId,
        (write, flush, apply): (Lsn, Lsn, Lsn),
        out: &mut Vec<Output>,
    ) {
        let Some(sender) = self.logical_senders.get_mut(&peer) else { return };
        // Never past what was sent (`sent_end` starts at the skip point and only grows).
        let flush = flush.min(sender.sent_end);
        sender.write = sender.write.max(write.min(sender.sent_end));
        sender.flush = sender.flush.max(flush);
        sender.apply = sender.apply.max(apply.min(sender.sent_end));
        let restart = sender.decoder.confirmed(flush);
        if let Some(slot) = self.logical_slots.get_mut(&sender.slot) {
            slot.confirm(flush, restart);
        }
        if !self.cfg.synchronous_standby_names.is_empty() {
            self.release_sync_waiters(out);
        }
    }

    /// Whether `peer` streams logically from here (its status updates are a subscriber's).
    pub(crate) fn is_logical_peer(&self, peer: NodeId) -> bool {
        self.logical_senders.contains_key(&peer)
    }
}
