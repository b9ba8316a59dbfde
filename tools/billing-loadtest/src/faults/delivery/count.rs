//! What the receiver got in `kill-during-delivery`: the events listed
//! after the registration against the receipts (lost, duplicated, out of
//! order per resource), and the scenario's criteria on those counts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::super::{Criterion, criterion, secs};
use crate::receiver::Receipt;

/// An event the endpoint must receive, in publication order.
#[derive(Clone, Debug)]
pub(super) struct Listed {
    pub(super) id: i64,
    pub(super) kind: String,
    pub(super) resource_id: i64,
    pub(super) version: i64,
}

/// The criteria on the counts.
pub(super) fn judge(
    count: &Count,
    (sender_kills, kills): (usize, usize),
    refused: u64,
    (settle_secs, settle_limit): (Option<Duration>, Duration),
    failed: usize,
) -> Vec<Criterion> {
    vec![
        criterion(
            "an instance was killed while it was sending deliveries (the receiver held its requests)",
            sender_kills > 0,
            format!("{sender_kills} of {kills} kills hit a sender with requests in flight"),
        ),
        criterion(
            "no event lost: every event listed by GET /events after the registration was received with a valid signature",
            count.events > 0 && count.lost.is_empty(),
            count.summary(),
        ),
        criterion(
            "every request carried a valid Billing-Signature",
            refused == 0,
            format!("{refused} refused"),
        ),
        criterion(
            "per resource, events were first received in publication order",
            count.out_of_order.is_empty(),
            if count.out_of_order.is_empty() {
                format!("{} resources checked", count.resources)
            } else {
                count
                    .out_of_order
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ),
        criterion(
            format!(
                "deliveries settle within {} s of the load's end, none failed",
                secs(settle_limit)
            ),
            settle_secs.is_some() && failed == 0,
            format!(
                "settled {} after the load stopped; {failed} deliveries failed",
                settle_secs.map_or("never".to_owned(), |d| format!("{} s", secs(d)))
            ),
        ),
    ]
}

/// The counts of a run.
#[derive(Debug, Default)]
pub(super) struct Count {
    pub(super) events: usize,
    pub(super) received: usize,
    pub(super) requests: usize,
    pub(super) duplicates: usize,
    pub(super) lost: Vec<i64>,
    pub(super) resources: usize,
    pub(super) out_of_order: Vec<String>,
    /// When the last listed event was first received (receiver clock).
    pub(super) last_first: Option<std::time::Duration>,
}

impl Count {
    pub(super) fn of(expected: &[Listed], receipts: &[Receipt]) -> Self {
        let mut first: HashMap<i64, usize> = HashMap::new();
        let mut times: HashMap<i64, usize> = HashMap::new();
        for (i, receipt) in receipts.iter().enumerate() {
            first.entry(receipt.event_id).or_insert(i);
            *times.entry(receipt.event_id).or_default() += 1;
        }
        let wanted: HashSet<i64> = expected.iter().map(|e| e.id).collect();
        let lost: Vec<i64> = expected
            .iter()
            .filter(|e| !first.contains_key(&e.id))
            .map(|e| e.id)
            .collect();
        let mut by_resource: BTreeMap<(String, i64), Vec<&Listed>> = BTreeMap::new();
        for event in expected {
            by_resource
                .entry((event.kind.clone(), event.resource_id))
                .or_default()
                .push(event);
        }
        let mut out_of_order = Vec::new();
        for ((kind, id), events) in &by_resource {
            for pair in events.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                let in_order = a.version < b.version
                    && match (first.get(&a.id), first.get(&b.id)) {
                        (Some(x), Some(y)) => x < y,
                        _ => true,
                    };
                if !in_order {
                    out_of_order.push(format!(
                        "{kind} {id}: event {} (v{}) and {} (v{})",
                        a.id, a.version, b.id, b.version
                    ));
                }
            }
        }
        Self {
            events: expected.len(),
            received: wanted.iter().filter(|id| first.contains_key(id)).count(),
            requests: receipts
                .iter()
                .filter(|r| wanted.contains(&r.event_id))
                .count(),
            duplicates: wanted
                .iter()
                .map(|id| times.get(id).copied().unwrap_or(0).saturating_sub(1))
                .sum(),
            lost,
            resources: by_resource.len(),
            out_of_order,
            last_first: expected
                .iter()
                .filter_map(|e| first.get(&e.id).map(|&i| receipts[i].at))
                .max(),
        }
    }

    fn summary(&self) -> String {
        format!(
            "{} events, {} received, {} requests, {} duplicates, {} lost{}",
            self.events,
            self.received,
            self.requests,
            self.duplicates,
            self.lost.len(),
            if self.lost.is_empty() {
                String::new()
            } else {
                format!(" (first: {:?})", &self.lost[..self.lost.len().min(10)])
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(id: i64, resource_id: i64, version: i64) -> Listed {
        Listed {
            id,
            kind: "invoice".to_owned(),
            resource_id,
            version,
        }
    }

    fn receipt(event_id: i64, resource_id: i64, version: i64) -> Receipt {
        Receipt {
            event_id,
            resource_kind: "invoice".to_owned(),
            resource_id,
            version,
            at: Duration::from_millis(u64::try_from(event_id).unwrap_or(0)),
        }
    }

    #[test]
    fn counts_lost_duplicates_and_order() {
        let expected = [
            listed(1, 7, 1),
            listed(2, 7, 2),
            listed(3, 8, 1),
            listed(4, 9, 1),
        ];
        // 1 twice (a redelivery), 2 and 3, 4 never; 99 was not expected.
        let receipts = [
            receipt(1, 7, 1),
            receipt(1, 7, 1),
            receipt(3, 8, 1),
            receipt(2, 7, 2),
            receipt(99, 5, 1),
        ];
        let count = Count::of(&expected, &receipts);
        assert_eq!(count.events, 4);
        assert_eq!(count.received, 3);
        assert_eq!(count.requests, 4);
        assert_eq!(count.duplicates, 1);
        assert_eq!(count.lost, vec![4]);
        assert_eq!(count.resources, 3);
        assert!(count.out_of_order.is_empty(), "{:?}", count.out_of_order);
    }

    #[test]
    fn a_later_event_received_first_is_out_of_order() {
        let expected = [listed(1, 7, 1), listed(2, 7, 2)];
        let receipts = [receipt(2, 7, 2), receipt(1, 7, 1)];
        let count = Count::of(&expected, &receipts);
        assert!(count.lost.is_empty());
        assert_eq!(count.out_of_order.len(), 1, "{:?}", count.out_of_order);
    }

    #[test]
    fn a_lost_event_fails_its_criterion_and_names_it() {
        let expected = [listed(1, 7, 1), listed(2, 7, 2)];
        let receipts = [receipt(1, 7, 1)];
        let count = Count::of(&expected, &receipts);
        let criteria = judge(
            &count,
            (1, 2),
            0,
            (Some(Duration::from_millis(1_500)), Duration::from_secs(120)),
            0,
        );
        let verdicts: Vec<(bool, &str)> =
            criteria.iter().map(|c| (c.ok, c.detail.as_str())).collect();
        assert_eq!(
            verdicts,
            [
                (true, "1 of 2 kills hit a sender with requests in flight"),
                (
                    false,
                    "2 events, 1 received, 1 requests, 0 duplicates, 1 lost (first: [2])"
                ),
                (true, "0 refused"),
                (true, "1 resources checked"),
                (
                    true,
                    "settled 1.500 s after the load stopped; 0 deliveries failed"
                ),
            ]
        );
    }
}
