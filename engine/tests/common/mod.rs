//! A tiny driver for engine integration tests: it owns `Node`s, records what they ask for, and
//! lets a test decide when each disk IO, CPU task and network message completes. No simulator:
//! nothing happens unless the test (or `settle`) makes it happen, and time is whatever the test
//! sets `now` to.
//!
//! The disk keeps, per file, the bytes of every *completed* write (what a process crash keeps)
//! and the bytes as of the last completed fsync of that file (what a power loss keeps).

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};

use repsim_engine::config::{BootRole, NodeConfig, SyncCommitLevel, SyncStandbyNames};
use repsim_engine::io::{
    ClientId, ComputeTask, DiskImage, FileId, Input, Instant, IoId, Observation, Output, Promise, Reply, Request,
    TimerId,
};
use repsim_engine::message::Message;
use repsim_engine::storage::Value;
use repsim_engine::wal::record::{self, Record, RowChange};
use repsim_engine::{initdb, Lsn, Node, NodeId};

pub const MS: u64 = 1_000_000;
pub const SEC: u64 = 1_000_000_000;
pub const TABLE: u32 = 1;

// ---------------------------------------------------------------------------------------------
// Disk

#[derive(Clone, Debug, Default)]
struct DiskFile {
    /// Every completed write applied: survives a process crash, not a power loss.
    current: Vec<u8>,
    /// As of the last completed fsync of this file: survives a power loss.
    durable: Vec<u8>,
}

/// An in-memory data directory.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    files: BTreeMap<FileId, DiskFile>,
}

fn write_at(target: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    if target.len() < offset + bytes.len() {
        target.resize(offset + bytes.len(), 0);
    }
    target[offset..offset + bytes.len()].copy_from_slice(bytes);
}

impl Disk {
    pub fn from_image(image: &DiskImage) -> Disk {
        let files = image
            .files
            .iter()
            .map(|(id, bytes)| (*id, DiskFile { current: bytes.to_vec(), durable: bytes.to_vec() }))
            .collect();
        Disk { files }
    }

    fn write(&mut self, file: FileId, offset: u64, bytes: &[u8]) {
        write_at(&mut self.files.entry(file).or_default().current, offset as usize, bytes);
    }

    fn fsync(&mut self, file: FileId) {
        let f = self.files.entry(file).or_default();
        f.durable = f.current.clone();
    }

    fn truncate(&mut self, file: FileId, len: u64) {
        if let Some(f) = self.files.get_mut(&file) {
            f.current.truncate(len as usize);
            f.durable.truncate(len as usize);
        }
    }

    fn remove(&mut self, file: FileId) {
        self.files.remove(&file);
    }

    /// What survives a power loss: only fsynced bytes (files never fsynced are gone).
    pub fn crash_image(&self) -> DiskImage {
        DiskImage {
            files: self
                .files
                .iter()
                .filter(|(_, f)| !f.durable.is_empty())
                .map(|(id, f)| (*id, f.durable.clone().into()))
                .collect(),
        }
    }

    /// What survives a crash of the server process alone: every completed write.
    pub fn process_crash_image(&self) -> DiskImage {
        DiskImage {
            files: self
                .files
                .iter()
                .filter(|(_, f)| !f.current.is_empty())
                .map(|(id, f)| (*id, f.current.clone().into()))
                .collect(),
        }
    }

    pub fn has(&self, file: FileId) -> bool {
        self.files.contains_key(&file)
    }

    /// Segment numbers of the WAL files present.
    pub fn wal_segments(&self) -> Vec<u64> {
        self.files
            .keys()
            .filter_map(|f| match f {
                FileId::WalSegment { segno, .. } => Some(*segno),
                _ => None,
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// One node and what it has asked for

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingIo {
    Write { io: IoId, file: FileId, offset: u64, bytes: Vec<u8> },
    Fsync { io: IoId, file: FileId },
}

impl PendingIo {
    pub fn io(&self) -> IoId {
        match self {
            PendingIo::Write { io, .. } | PendingIo::Fsync { io, .. } => *io,
        }
    }

    pub fn is_fsync(&self) -> bool {
        matches!(self, PendingIo::Fsync { .. })
    }
}

pub struct Peer {
    pub node: Node,
    pub disk: Disk,
    /// Issued, not completed, in issue order (the disk completes them in this order).
    pub ios: VecDeque<PendingIo>,
    pub computes: VecDeque<ComputeTask>,
    /// Messages this node sent and nobody delivered yet.
    pub outbox: VecDeque<(NodeId, Message)>,
    /// The latest `SetTimer` per timer.
    pub timers: BTreeMap<TimerId, Instant>,
    /// Every output this node ever produced.
    pub log: Vec<Output>,
}

pub struct Harness {
    pub now: Instant,
    pub nodes: BTreeMap<NodeId, Peer>,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

impl Harness {
    pub fn new() -> Harness {
        Harness { now: Instant(0), nodes: BTreeMap::new() }
    }

    pub fn advance(&mut self, ns: u64) {
        self.now = Instant(self.now.0 + ns);
    }

    pub fn set_time(&mut self, at: Instant) {
        assert!(at >= self.now, "time goes forward only");
        self.now = at;
    }

    /// Creates the node and feeds it `Boot`; it stays `Recovering` until its recovery compute
    /// task completes. Returns the boot outputs.
    pub fn boot(&mut self, cfg: NodeConfig, image: DiskImage) -> Vec<Output> {
        let disk = Disk::from_image(&image);
        self.boot_on(cfg, disk, image)
    }

    /// Boots from `image` on `disk` (which may hold more than the image, e.g. unfsynced bytes).
    fn boot_on(&mut self, cfg: NodeConfig, disk: Disk, image: DiskImage) -> Vec<Output> {
        let id = cfg.node_id;
        let peer = Peer {
            node: Node::new(cfg),
            disk,
            ios: VecDeque::new(),
            computes: VecDeque::new(),
            outbox: VecDeque::new(),
            timers: BTreeMap::new(),
            log: Vec::new(),
        };
        assert!(self.nodes.insert(id, peer).is_none(), "node {id} exists");
        self.step(id, Input::Boot(image))
    }

    /// Boots the node and completes its crash recovery.
    pub fn start(&mut self, cfg: NodeConfig, image: DiskImage) -> NodeId {
        let id = cfg.node_id;
        let outs = self.boot(cfg, image);
        assert!(
            outs.iter().any(|o| matches!(o, Output::Compute(ComputeTask::Recovery { .. }))),
            "boot must ask for recovery CPU time: {outs:?}"
        );
        self.complete_compute(id);
        id
    }

    pub fn peer(&self, id: NodeId) -> &Peer {
        &self.nodes[&id]
    }

    pub fn peer_mut(&mut self, id: NodeId) -> &mut Peer {
        self.nodes.get_mut(&id).expect("node exists")
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[&id].node
    }

    /// Feeds one input at `now` and records what the node asks for. Returns the outputs.
    pub fn step(&mut self, id: NodeId, input: Input) -> Vec<Output> {
        let now = self.now;
        let peer = self.nodes.get_mut(&id).expect("node exists");
        let mut outs = Vec::new();
        peer.node.step(now, input, &mut outs);
        for out in &outs {
            match out {
                Output::Send { to, msg } => peer.outbox.push_back((*to, msg.clone())),
                Output::SetTimer { id, at } => {
                    peer.timers.insert(*id, *at);
                }
                Output::Write { io, file, offset, bytes, .. } => {
                    peer.ios.push_back(PendingIo::Write { io: *io, file: *file, offset: *offset, bytes: bytes.clone() })
                }
                Output::Fsync { io, file } => peer.ios.push_back(PendingIo::Fsync { io: *io, file: *file }),
                Output::Truncate { file, len } => peer.disk.truncate(*file, *len),
                Output::Remove { file } => peer.disk.remove(*file),
                Output::Compute(task) => peer.computes.push_back(*task),
                Output::Disconnect { .. }
                | Output::Reply { .. }
                | Output::Observe(_)
                | Output::ArchiveSegment { .. }
                | Output::RestoreSegment { .. } => {}
            }
        }
        peer.log.extend(outs.iter().cloned());
        outs
    }

    // ----- disk ------------------------------------------------------------------------------

    pub fn pending_ios(&self, id: NodeId) -> usize {
        self.nodes[&id].ios.len()
    }

    /// Completes the oldest outstanding IO, if any.
    pub fn complete_next_io(&mut self, id: NodeId) -> Option<Vec<Output>> {
        let op = self.peer_mut(id).ios.pop_front()?;
        let peer = self.peer_mut(id);
        match &op {
            PendingIo::Write { file, offset, bytes, .. } => peer.disk.write(*file, *offset, bytes),
            PendingIo::Fsync { file, .. } => peer.disk.fsync(*file),
        }
        Some(self.step(id, Input::DiskDone(op.io())))
    }

    /// Completes outstanding IOs in order while they are writes (stops before the first fsync).
    pub fn complete_writes(&mut self, id: NodeId) -> Vec<Output> {
        let mut outs = Vec::new();
        while self.nodes[&id].ios.front().is_some_and(|op| !op.is_fsync()) {
            outs.extend(self.complete_next_io(id).expect("checked"));
        }
        outs
    }

    /// Completes outstanding IOs in order up to and including the first fsync.
    pub fn complete_through_fsync(&mut self, id: NodeId) -> Vec<Output> {
        let mut outs = Vec::new();
        while let Some(op) = self.nodes[&id].ios.front().cloned() {
            outs.extend(self.complete_next_io(id).expect("checked"));
            if op.is_fsync() {
                break;
            }
        }
        outs
    }

    /// Completes IOs (including ones issued meanwhile) until none is outstanding.
    pub fn complete_all_io(&mut self, id: NodeId) -> Vec<Output> {
        let mut outs = Vec::new();
        while let Some(more) = self.complete_next_io(id) {
            outs.extend(more);
        }
        outs
    }

    pub fn crash_image(&self, id: NodeId) -> DiskImage {
        self.nodes[&id].disk.crash_image()
    }

    pub fn process_crash_image(&self, id: NodeId) -> DiskImage {
        self.nodes[&id].disk.process_crash_image()
    }

    /// The node dies: it and every message addressed to it vanish. Returns its disk.
    pub fn crash(&mut self, id: NodeId) -> Disk {
        let peer = self.nodes.remove(&id).expect("node exists");
        for other in self.nodes.values_mut() {
            other.outbox.retain(|(to, _)| *to != id);
        }
        peer.disk
    }

    /// The server process dies and restarts on the same machine: outstanding IOs are lost, the
    /// OS keeps written-but-unfsynced bytes (still not durable), and a new `Node` boots from
    /// them. Returns the boot outputs.
    pub fn restart_process(&mut self, cfg: NodeConfig) -> Vec<Output> {
        let id = cfg.node_id;
        let disk = self.crash(id);
        let image = disk.process_crash_image();
        self.boot_on(cfg, disk, image)
    }

    // ----- CPU -------------------------------------------------------------------------------

    /// Completes the outstanding compute tasks (not ones issued meanwhile).
    pub fn complete_compute(&mut self, id: NodeId) -> Vec<Output> {
        let tasks: Vec<ComputeTask> = self.peer_mut(id).computes.drain(..).collect();
        let mut outs = Vec::new();
        for task in tasks {
            outs.extend(self.step(id, Input::ComputeDone(task)));
        }
        outs
    }

    // ----- network ---------------------------------------------------------------------------

    /// Removes and returns the undelivered messages `from` sent to `to`.
    pub fn take_sent(&mut self, from: NodeId, to: NodeId) -> Vec<Message> {
        let outbox = &mut self.peer_mut(from).outbox;
        let mut taken = Vec::new();
        let mut kept = VecDeque::new();
        for (dest, msg) in outbox.drain(..) {
            if dest == to {
                taken.push(msg);
            } else {
                kept.push_back((dest, msg));
            }
        }
        *outbox = kept;
        taken
    }

    /// Delivers, in order, every undelivered message `from` sent to `to`; returns `to`'s outputs.
    pub fn deliver(&mut self, from: NodeId, to: NodeId) -> Vec<Output> {
        let mut outs = Vec::new();
        for msg in self.take_sent(from, to) {
            outs.extend(self.step(to, Input::Message { from, msg }));
        }
        outs
    }

    /// Feeds `to` one message as if `from` had sent it (for fake peers).
    pub fn inject(&mut self, from: NodeId, to: NodeId, msg: Message) -> Vec<Output> {
        self.step(to, Input::Message { from, msg })
    }

    /// Runs every node's disk, CPU and the network between existing nodes until nothing is left
    /// to do. Timers never fire on their own; messages to absent nodes stay in the outboxes.
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            let mut progressed = false;
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for &id in &ids {
                if self.complete_next_io(id).is_some() {
                    progressed = true;
                }
                if !self.nodes[&id].computes.is_empty() {
                    self.complete_compute(id);
                    progressed = true;
                }
                let mut targets: Vec<NodeId> =
                    self.nodes[&id].outbox.iter().map(|(to, _)| *to).filter(|to| self.nodes.contains_key(to)).collect();
                targets.dedup();
                for to in targets {
                    self.deliver(id, to);
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
        }
        panic!("settle: no quiescence after 100000 rounds");
    }

    // ----- timers ----------------------------------------------------------------------------

    pub fn timer(&self, id: NodeId, timer: TimerId) -> Option<Instant> {
        self.nodes[&id].timers.get(&timer).copied()
    }

    /// Completes IOs, then fires a spread checkpoint's paced writes (and completes their IOs)
    /// until it no longer re-arms them: the checkpoint or restartpoint in progress is done.
    pub fn complete_checkpoint(&mut self, id: NodeId) -> Vec<Output> {
        let mut outs = self.complete_all_io(id);
        while self.timer(id, TimerId::CheckpointWrite).is_some() {
            outs.extend(self.fire(id, TimerId::CheckpointWrite));
            outs.extend(self.complete_all_io(id));
        }
        outs
    }

    /// Moves time to the timer's latest deadline (if later than now) and fires it.
    pub fn fire(&mut self, id: NodeId, timer: TimerId) -> Vec<Output> {
        let at = self.timer(id, timer).unwrap_or_else(|| panic!("timer {timer:?} of node {id} was never set"));
        if at > self.now {
            self.now = at;
        }
        self.peer_mut(id).timers.remove(&timer);
        self.step(id, Input::Timer(timer))
    }

    // ----- clients ---------------------------------------------------------------------------

    pub fn write(&mut self, id: NodeId, op_id: u64, changes: Vec<RowChange>) -> Vec<Output> {
        self.step(
            id,
            Input::Client {
                client: ClientId(op_id),
                op_id,
                request: Request::Write { changes, commit: true, synchronous_commit: None },
            },
        )
    }

    pub fn read(&mut self, id: NodeId, table: u32, key: u64) -> Reply {
        let outs = self.step(
            id,
            Input::Client { client: ClientId(9999), op_id: 0, request: Request::Read { table, key, duration_ns: 0 } },
        );
        let mut replies = replies(&outs);
        assert_eq!(replies.len(), 1, "one reply to a read: {outs:?}");
        replies.remove(0).1
    }

    pub fn read_value(&mut self, id: NodeId, key: u64) -> Option<Value> {
        match self.read(id, TABLE, key) {
            Reply::Read { value, .. } => value,
            other => panic!("read failed: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration

pub fn cluster(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Node 0 as primary of a cluster named `names`.
pub fn primary_cfg(names: &[&str], level: SyncCommitLevel, standby_names: &str) -> NodeConfig {
    let mut cfg = NodeConfig::with_defaults(0, cluster(names));
    cfg.synchronous_commit = level;
    cfg.synchronous_standby_names = SyncStandbyNames::parse(standby_names).expect("valid synchronous_standby_names");
    cfg
}

/// Node `id` as a standby streaming from node 0.
pub fn standby_cfg(id: NodeId, names: &[&str]) -> NodeConfig {
    let mut cfg = NodeConfig::with_defaults(id, cluster(names));
    cfg.boot_role = BootRole::Standby;
    cfg.primary_conninfo = Some(0);
    cfg
}

/// The fresh cluster image every node of a test starts from (one base backup at time 0).
pub fn fresh_image(cfg: &NodeConfig) -> DiskImage {
    initdb(cfg)
}

pub fn insert(key: u64, write_id: u64, value_len: u32) -> RowChange {
    RowChange::Insert { table: TABLE, key, write_id, value_len }
}

pub fn value(write_id: u64, len: u32) -> Value {
    Value { write_id, len }
}

// ---------------------------------------------------------------------------------------------
// Looking at outputs

pub fn replies(outs: &[Output]) -> Vec<(u64, Reply)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Reply { op_id, reply, .. } => Some((*op_id, reply.clone())),
            _ => None,
        })
        .collect()
}

/// `(op_id, commit_lsn, promise)` of every `Committed` reply.
pub fn committed(outs: &[Output]) -> Vec<(u64, Lsn, Promise)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Reply { op_id, reply: Reply::Committed { commit_lsn, promise }, .. } => {
                Some((*op_id, *commit_lsn, promise.clone()))
            }
            _ => None,
        })
        .collect()
}

pub fn fsyncs(outs: &[Output]) -> usize {
    outs.iter().filter(|o| matches!(o, Output::Fsync { .. })).count()
}

pub fn wal_fsyncs(outs: &[Output]) -> usize {
    outs.iter().filter(|o| matches!(o, Output::Fsync { file: FileId::WalSegment { .. }, .. })).count()
}

pub fn wal_writes(outs: &[Output]) -> Vec<(u64, u64, usize)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Write { file: FileId::WalSegment { segno, .. }, offset, bytes, .. } => {
                Some((*segno, *offset, bytes.len()))
            }
            _ => None,
        })
        .collect()
}

pub fn sends(outs: &[Output]) -> Vec<(NodeId, Message)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

/// `(write, flush, apply, reply_requested)` of every status update in `outs`.
pub fn status_updates(outs: &[Output]) -> Vec<(Lsn, Lsn, Lsn, bool)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { msg: Message::StatusUpdate { write, flush, apply, reply_requested, .. }, .. } => {
                Some((*write, *flush, *apply, *reply_requested))
            }
            _ => None,
        })
        .collect()
}

pub fn start_replications(outs: &[Output]) -> Vec<(NodeId, Lsn, u32)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { to, msg: Message::StartReplication { start, timeline } } => Some((*to, *start, *timeline)),
            _ => None,
        })
        .collect()
}

pub fn observations(outs: &[Output]) -> Vec<Observation> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Observe(obs) => Some(obs.clone()),
            _ => None,
        })
        .collect()
}

pub fn recovered(outs: &[Output]) -> (Lsn, Lsn, u64) {
    let found: Vec<(Lsn, Lsn, u64)> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Observe(Observation::Recovered { redo, end, records }) => Some((*redo, *end, *records)),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "exactly one Recovered observation: {outs:?}");
    found[0]
}

pub fn disconnects(outs: &[Output]) -> Vec<NodeId> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Disconnect { peer } => Some(*peer),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reading WAL bytes

/// Decodes the records in `bytes`, which hold WAL from `at`, the first record's predecessor
/// starting at `prev`. Stops at the first invalid or torn record. `(start, end, record)` each.
pub fn decode_records(bytes: &[u8], at: Lsn, prev: Lsn) -> Vec<(Lsn, Lsn, Record)> {
    // Strip the 8 KB pages' headers (24 bytes, 40 for a long one: flag 0x0002), remembering
    // the LSN of each payload byte run.
    const PAGE: u64 = 8192;
    let mut payload = Vec::new();
    let mut runs: Vec<(usize, u64)> = Vec::new(); // (payload offset, lsn) where a run starts
    let mut lsn = at.0;
    while lsn < at.0 + bytes.len() as u64 {
        let off = (lsn - at.0) as usize;
        if lsn.is_multiple_of(PAGE) {
            let long = bytes.get(off + 2).is_some_and(|flags| flags & 0x02 != 0);
            lsn += if long { 40 } else { 24 };
            continue;
        }
        let page_end = ((lsn / PAGE + 1) * PAGE).min(at.0 + bytes.len() as u64);
        runs.push((payload.len(), lsn));
        payload.extend_from_slice(&bytes[off..(page_end - at.0) as usize]);
        lsn = page_end;
    }
    let lsn_of = |offset: usize, end: bool| -> Lsn {
        let i = runs.partition_point(|(o, _)| *o < offset + usize::from(!end)).saturating_sub(1);
        let (o, l) = runs[i];
        Lsn(l + (offset - o) as u64)
    };
    let mut found = Vec::new();
    let (mut offset, mut prev) = (0usize, prev);
    while offset < payload.len() {
        let Ok((rec, len)) = record::decode(&payload[offset..], prev) else { break };
        let start = lsn_of(offset, false);
        let end = lsn_of(offset + len as usize, true);
        found.push((start, end, rec));
        prev = start;
        offset += len as usize;
    }
    found
}

/// Like `decode_records`, trusting the first record's own prev-link (for a stream excerpt).
pub fn decode_stream(bytes: &[u8], at: Lsn) -> Vec<(Lsn, Lsn, Record)> {
    // The first record starts after a page header when the excerpt starts a page.
    let first = match at.0 % 8192 {
        0 if bytes.get(2).is_some_and(|flags| flags & 0x02 != 0) => 40,
        0 => 24,
        _ => 0,
    };
    if bytes.len() < first + 16 {
        return Vec::new();
    }
    let prev = Lsn(u64::from_le_bytes(bytes[first + 8..first + 16].try_into().expect("8 bytes")));
    decode_records(bytes, at, prev)
}
