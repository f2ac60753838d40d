//! Exactly-once bookkeeping for the runner <-> Durable Object link. Both directions number their
//! messages; the receiver acknowledges and drops what it has already seen; the sender keeps
//! everything unacknowledged and sends it again after a reconnect.

use std::collections::VecDeque;

use crate::events::EventBody;

/// The runner's outbound buffer of events not yet acknowledged by the Durable Object. Each is
/// kept as the JSON it is sent as: serialized once however often it is resent, and its size
/// known, so a batch is bounded by bytes as well as by count.
#[derive(Debug, Default)]
pub struct Outbox {
    next_rseq: u64,
    /// (rseq, event's JSON, sent on the current connection)
    pending: VecDeque<(u64, String, bool)>,
}

impl Outbox {
    pub fn new() -> Self {
        Self {
            next_rseq: 1,
            pending: VecDeque::new(),
        }
    }

    pub fn push(&mut self, event: &EventBody) -> u64 {
        let rseq = self.next_rseq;
        self.next_rseq += 1;
        // An event is plain data: it always serializes.
        let json = serde_json::to_string(event).unwrap_or_default();
        self.pending.push_back((rseq, json, false));
        rseq
    }

    /// Drops everything up to and including `rseq`.
    pub fn ack(&mut self, rseq: u64) {
        while self.pending.front().is_some_and(|(s, _, _)| *s <= rseq) {
            self.pending.pop_front();
        }
    }

    /// A new connection: everything unacknowledged must be sent again.
    pub fn reconnected(&mut self, acked_rseq: u64) {
        self.ack(acked_rseq);
        for entry in &mut self.pending {
            entry.2 = false;
        }
    }

    /// The next batch to send (consecutive, unsent), marked as sent: at most `max_events`
    /// events and, past the first, at most `max_bytes` of their JSON.
    pub fn take_unsent(&mut self, max_events: usize, max_bytes: usize) -> Option<(u64, Vec<&str>)> {
        let start = self.pending.iter().position(|(_, _, sent)| !sent)?;
        let first = self.pending[start].0;
        let mut bytes = 0;
        let mut taken = 0;
        for entry in self.pending.iter_mut().skip(start).take(max_events) {
            if taken > 0 && bytes + entry.1.len() > max_bytes {
                break;
            }
            bytes += entry.1.len();
            taken += 1;
            entry.2 = true;
        }
        let batch = self
            .pending
            .iter()
            .skip(start)
            .take(taken)
            .map(|(_, json, _)| json.as_str())
            .collect();
        Some((first, batch))
    }

    pub fn unacked(&self) -> usize {
        self.pending.len()
    }
}

/// What the receiver should do with a batch `first..first+len` given it has persisted up to `last`.
#[derive(Debug, PartialEq, Eq)]
pub enum Accept {
    /// Persist the events from index `skip` on (the ones before are duplicates).
    From { skip: usize },
    /// The batch starts after a hole: the sender must resend from `last + 1`.
    Gap { expected: u64 },
}

pub fn accept_batch(last: u64, first: u64, len: usize) -> Accept {
    if first == 0 || first > last + 1 {
        return Accept::Gap { expected: last + 1 };
    }
    let skip = (last + 1 - first).min(len as u64) as usize;
    Accept::From { skip }
}

/// The runner keeps its events until acknowledged only to send them again after a reconnect
/// (the welcome says how far the log holds them), so the Durable Object acknowledges in bulk
/// rather than frame by frame: an ack per frame is one more send on the relay's hot path for
/// every frame the runner sends. The runner then holds at most this many persisted events (plus
/// a batch) while it streams, and fewer for no longer than a heartbeat.
pub const ACK_EVERY_EVENTS: u64 = 256;

/// Whether the Durable Object, having persisted the runner's events up to `persisted` and last
/// told this connection `acked`, acknowledges now: once the runner holds `ACK_EVERY_EVENTS`
/// persisted events, and whenever `prompted` (a heartbeat saying the runner holds some, or a
/// frame with nothing new in it, which a runner resends only while it knows less than we do).
pub fn ack_due(persisted: u64, acked: u64, prompted: bool) -> bool {
    persisted > acked && (prompted || persisted - acked >= ACK_EVERY_EVENTS)
}

/// Commands arriving at the runner: ids are increasing, so remembering the highest executed is
/// enough to execute each at most once.
#[derive(Debug, Default)]
pub struct CommandDedup {
    highest: u64,
}

impl CommandDedup {
    /// True when the command is new and should be executed.
    pub fn first_time(&mut self, id: u64) -> bool {
        if id > self.highest {
            self.highest = id;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(s: &str) -> EventBody {
        EventBody::TextDelta {
            message_id: "m".into(),
            part_id: "p".into(),
            delta: s.into(),
        }
    }

    #[test]
    fn outbox_resends_unacked_after_reconnect() {
        let mut out = Outbox::new();
        for s in ["a", "b", "c"] {
            out.push(&delta(s));
        }
        let (first, batch) = out.take_unsent(10, usize::MAX).unwrap();
        assert_eq!((first, batch.len()), (1, 3));
        assert!(out.take_unsent(10, usize::MAX).is_none());
        out.ack(1);
        out.reconnected(2);
        let (first, batch) = out.take_unsent(10, usize::MAX).unwrap();
        let c = serde_json::to_string(&delta("c")).unwrap();
        assert_eq!((first, batch), (3, vec![c.as_str()]));
        out.ack(3);
        assert_eq!(out.unacked(), 0);
    }

    #[test]
    fn outbox_batches_respect_count_and_bytes() {
        let mut out = Outbox::new();
        for _ in 0..5 {
            out.push(&delta("x"));
        }
        assert_eq!(out.take_unsent(2, usize::MAX).unwrap().0, 1);
        assert_eq!(out.take_unsent(2, usize::MAX).unwrap().0, 3);
        assert_eq!(out.take_unsent(2, usize::MAX).unwrap().1.len(), 1);
        // By bytes: as many as fit, but always at least one, however big.
        let mut out = Outbox::new();
        let one = serde_json::to_string(&delta("x")).unwrap().len();
        for _ in 0..5 {
            out.push(&delta("x"));
        }
        out.push(&delta(&"y".repeat(1000)));
        assert_eq!(out.take_unsent(100, 2 * one + 1).unwrap().1.len(), 2);
        assert_eq!(
            out.take_unsent(100, 2 * one).unwrap(),
            (
                3,
                vec![serde_json::to_string(&delta("x")).unwrap().as_str(); 2]
            )
        );
        assert_eq!(out.take_unsent(100, 10).unwrap().1.len(), 1);
        let (first, big) = out.take_unsent(100, 10).unwrap();
        assert_eq!(
            (first, big.len()),
            (6, 1),
            "a batch holds one event bigger than the bound"
        );
    }

    #[test]
    fn receiver_drops_duplicates_and_detects_gaps() {
        assert_eq!(accept_batch(0, 1, 3), Accept::From { skip: 0 });
        assert_eq!(accept_batch(2, 1, 3), Accept::From { skip: 2 });
        assert_eq!(accept_batch(5, 1, 3), Accept::From { skip: 3 });
        assert_eq!(accept_batch(2, 4, 3), Accept::Gap { expected: 3 });
        assert_eq!(accept_batch(0, 0, 1), Accept::Gap { expected: 1 });
    }

    #[test]
    fn acks_are_sent_in_bulk_or_when_prompted() {
        assert!(!ack_due(1, 0, false), "one event is not acknowledged alone");
        assert!(!ack_due(ACK_EVERY_EVENTS - 1, 0, false));
        assert!(ack_due(ACK_EVERY_EVENTS, 0, false));
        assert!(ack_due(ACK_EVERY_EVENTS + 9, 9, false));
        assert!(ack_due(3, 2, true), "a heartbeat or a resend is answered");
        assert!(!ack_due(2, 2, true), "nothing new to tell");
    }

    #[test]
    fn commands_execute_once() {
        let mut d = CommandDedup::default();
        assert!(d.first_time(1));
        assert!(!d.first_time(1));
        assert!(d.first_time(3));
        assert!(!d.first_time(2));
    }
}
