//! `inactive-slot.toml`: an unconsumed logical slot holds WAL until `max_slot_wal_keep_size`
//! invalidates it, and `slot_wal_kept` judges every WAL removal against the slots saved on
//! the node's disk.

mod common;

#[test]
fn an_abandoned_slot_is_invalidated_past_max_slot_wal_keep_size_and_its_wal_kept_until_then() {
    let s = common::run("inactive-slot", 1, &[]);
    assert!(s.ok, "{:?}", s.violations);
    assert_eq!(s.logical_slots.len(), 2, "{:?}", s.logical_slots);
    assert!(s.logical_slots[0].starts_with("10.000s pg1: slot cdc created"), "{:?}", s.logical_slots);
    assert!(s.logical_slots[1].contains("slot cdc invalidated: wal_removed"), "{:?}", s.logical_slots);
    assert_eq!(s.invariants["slot_wal_kept"], "ok");
}

#[test]
fn without_a_create_logical_slot_fault_slot_wal_kept_is_not_judged() {
    let none = common::run("sync-vs-async", 1, &["duration=2s"]);
    assert_eq!(none.invariants["slot_wal_kept"], "not_checked");
}
