//! How a session's log is laid out in its object's SQLite: consecutive events share a row, as
//! the JSON array they were persisted as. A runner's batch of 256 deltas is then one statement
//! with three parameters, not hundreds of rows; a reader takes a row whole, or parses out the
//! part of it a page asks for.

use serde_json::value::RawValue;

/// At most this many bytes of events' JSON share a row (one event larger than this has a row of
/// its own): well under the storage's 2 MB a row, and a runner's largest frame (4 MiB, its
/// events about 1.6 times that once numbered) fills fewer than 15.
pub const MAX_ROW_BYTES: usize = 512 * 1024;

/// The rows `events` (each an event's JSON, numbered from `first_seq`) are stored in: each the
/// first and last sequence number it holds and the array of their JSON.
pub fn rows(first_seq: u64, events: &[String]) -> Vec<(u64, u64, String)> {
    let mut rows = Vec::new();
    let mut start = 0;
    while start < events.len() {
        let mut end = start + 1;
        let mut bytes = events[start].len();
        while let Some(next) = events.get(end) {
            // The event and the comma before it.
            let with = bytes + 1 + next.len();
            if with > MAX_ROW_BYTES {
                break;
            }
            bytes = with;
            end += 1;
        }
        let first = first_seq + start as u64;
        let mut array = String::with_capacity(bytes + 2);
        array.push('[');
        for (i, event) in events[start..end].iter().enumerate() {
            if i > 0 {
                array.push(',');
            }
            array.push_str(event);
        }
        array.push(']');
        rows.push((first, first + (end - start - 1) as u64, array));
        start = end;
    }
    rows
}

/// The events numbered `from..=to` of a row (`array`, holding `first..=last`), as their JSON
/// separated by commas; a row taken whole is not parsed.
pub fn slice(first: u64, last: u64, array: &str, from: u64, to: u64) -> serde_json::Result<String> {
    if from <= first && to >= last {
        return Ok(array[1..array.len() - 1].to_owned());
    }
    let events: Vec<&RawValue> = serde_json::from_str(array)?;
    let lo = from.saturating_sub(first) as usize;
    let hi = (to.min(last) + 1).saturating_sub(first) as usize;
    let picked: Vec<&str> = events
        .get(lo..hi.max(lo))
        .unwrap_or_default()
        .iter()
        .map(|e| e.get())
        .collect();
    Ok(picked.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` events of the same length, numbered in `n` from 1,000,000.
    fn events(n: usize, size: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!(r#"{{"n":{},"d":"{}"}}"#, 1_000_000 + i, "x".repeat(size)))
            .collect()
    }

    #[test]
    fn a_batch_is_one_row_and_rows_are_bounded() {
        let one = rows(7, &events(256, 10));
        assert_eq!(one.len(), 1);
        assert_eq!((one[0].0, one[0].1), (7, 262));
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&one[0].2).unwrap();
        assert_eq!(parsed.len(), 256);

        // 21-byte events, 22 with their comma: a row holds as many as fit.
        let fit = (MAX_ROW_BYTES - 21) / 22 + 1;
        let many = rows(1, &events(fit * 2 + 1, 1));
        let spans: Vec<(u64, u64)> = many.iter().map(|r| (r.0, r.1)).collect();
        let fit = fit as u64;
        assert_eq!(
            spans,
            vec![(1, fit), (fit + 1, 2 * fit), (2 * fit + 1, 2 * fit + 1)]
        );
        assert!(many.iter().all(|r| r.2.len() <= MAX_ROW_BYTES + 2));

        let big = rows(1, &events(5, MAX_ROW_BYTES / 2));
        assert_eq!(big.len(), 5, "two of these would pass the row's byte bound");
        let huge = rows(1, &events(1, MAX_ROW_BYTES * 2));
        assert_eq!(huge.len(), 1, "an event larger than a row still has one");
        assert!(rows(1, &[]).is_empty());
    }

    #[test]
    fn a_slice_takes_exactly_the_numbers_asked_for() {
        let row = &rows(10, &events(5, 1))[0].2;
        let seqs = |s: String| -> Vec<u64> {
            let v: Vec<serde_json::Value> = serde_json::from_str(&format!("[{s}]")).unwrap();
            v.iter()
                .map(|e| e["n"].as_u64().unwrap() - 1_000_000 + 10)
                .collect()
        };
        assert_eq!(
            seqs(slice(10, 14, row, 10, 14).unwrap()),
            [10, 11, 12, 13, 14]
        );
        assert_eq!(
            seqs(slice(10, 14, row, 1, 99).unwrap()),
            [10, 11, 12, 13, 14]
        );
        assert_eq!(seqs(slice(10, 14, row, 12, 99).unwrap()), [12, 13, 14]);
        assert_eq!(seqs(slice(10, 14, row, 10, 11).unwrap()), [10, 11]);
        assert_eq!(seqs(slice(10, 14, row, 13, 13).unwrap()), [13]);
        assert_eq!(slice(10, 14, row, 15, 20).unwrap(), "");
        assert!(slice(10, 14, "[not json", 10, 11).is_err());
    }
}
