//! ACL LOG: the last refused commands and failed AUTHs, newest first, repeats of the same
//! refusal within a minute counted on one entry (Redis's grouping).

use std::collections::VecDeque;

use parking_lot::Mutex;

use crate::protocol::Reply;

/// Entries kept (Redis's `acllog-max-len` default).
pub const MAX_LEN: usize = 128;
/// A refusal like an entry no older than this adds to its count instead of a new entry.
const GROUP_MS: u64 = 60_000;

/// One entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// How many times it happened.
    pub count: u64,
    /// `command`, `key`, `channel` or `auth`.
    pub reason: &'static str,
    /// `toplevel` or `multi`.
    pub context: &'static str,
    /// The command, key or channel refused (`AUTH` for a failed login).
    pub object: String,
    /// The user.
    pub username: String,
    /// The client, as CLIENT LIST describes it.
    pub client_info: String,
    /// Unique, increasing.
    pub entry_id: u64,
    /// Unix ms of the first and last time.
    pub created_ms: u64,
    /// See `created_ms`.
    pub updated_ms: u64,
}

/// The log.
#[derive(Debug, Default)]
pub struct Log {
    /// Newest first; a mutex taken only when something is refused or ACL LOG runs.
    entries: Mutex<(VecDeque<Entry>, u64)>,
    /// Refusals ever, by reason: auth, command, key, channel (INFO stats
    /// `acl_access_denied_*`; ACL LOG RESET leaves them).
    denied: [std::sync::atomic::AtomicU64; 4],
}

impl Log {
    /// Records a refusal at `now_ms`.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &self,
        reason: &'static str,
        context: &'static str,
        object: String,
        username: &str,
        client_info: String,
        now_ms: u64,
    ) {
        let i = match reason {
            "auth" => 0,
            "command" => 1,
            "key" => 2,
            _ => 3,
        };
        self.denied[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut g = self.entries.lock();
        let (list, next) = &mut *g;
        let same = list.iter().position(|e| {
            e.reason == reason
                && e.context == context
                && e.object == object
                && e.username == username
                && now_ms.saturating_sub(e.updated_ms) < GROUP_MS
        });
        if let Some(i) = same
            && let Some(mut e) = list.remove(i)
        {
            e.count += 1;
            e.updated_ms = now_ms;
            e.client_info = client_info;
            list.push_front(e);
            return;
        }
        *next += 1;
        list.push_front(Entry {
            count: 1,
            reason,
            context,
            object,
            username: username.to_string(),
            client_info,
            entry_id: *next - 1,
            created_ms: now_ms,
            updated_ms: now_ms,
        });
        list.truncate(MAX_LEN);
    }

    /// Refusals since start: (auth, command, key, channel).
    pub fn denied(&self) -> [u64; 4] {
        self.denied
            .each_ref()
            .map(|a| a.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Forgets every entry (ACL LOG RESET).
    pub fn reset(&self) {
        self.entries.lock().0.clear();
    }

    /// The newest `count` entries as ACL LOG answers them.
    pub fn reply(&self, count: usize, now_ms: u64) -> Reply {
        let g = self.entries.lock();
        let s = |v: &str| Reply::bulk(v);
        Reply::Array(
            g.0.iter()
                .take(count)
                .map(|e| {
                    Reply::Map(vec![
                        (s("count"), Reply::Int(e.count as i64)),
                        (s("reason"), s(e.reason)),
                        (s("context"), s(e.context)),
                        (s("object"), s(&e.object)),
                        (s("username"), s(&e.username)),
                        (
                            s("age-seconds"),
                            Reply::Double(now_ms.saturating_sub(e.created_ms) as f64 / 1000.0),
                        ),
                        (s("client-info"), s(&e.client_info)),
                        (s("entry-id"), Reply::Int(e.entry_id as i64)),
                        (s("timestamp-created"), Reply::Int(e.created_ms as i64)),
                        (s("timestamp-last-updated"), Reply::Int(e.updated_ms as i64)),
                    ])
                })
                .collect(),
        )
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.lock().0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_a_minute_are_grouped() {
        let log = Log::default();
        log.add("key", "toplevel", "k".into(), "alice", "id=1".into(), 1_000);
        log.add("key", "toplevel", "k".into(), "alice", "id=2".into(), 2_000);
        log.add(
            "command",
            "multi",
            "get".into(),
            "alice",
            "id=2".into(),
            3_000,
        );
        assert_eq!(log.len(), 2);
        // Over a minute later: a new entry.
        log.add(
            "key",
            "toplevel",
            "k".into(),
            "alice",
            "id=3".into(),
            100_000,
        );
        assert_eq!(log.len(), 3);
        let g = log.entries.lock();
        assert_eq!(g.0[0].count, 1);
        assert_eq!((g.0[2].count, g.0[2].client_info.as_str()), (2, "id=2"));
        assert_eq!(
            g.0.iter().map(|e| e.entry_id).collect::<Vec<_>>(),
            [2, 1, 0]
        );
        drop(g);
        for i in 0..(MAX_LEN as u64 + 10) {
            log.add(
                "auth",
                "toplevel",
                "AUTH".into(),
                &format!("u{i}"),
                String::new(),
                5,
            );
        }
        assert_eq!(log.len(), MAX_LEN);
        log.reset();
        assert!(log.is_empty());
        assert_eq!(log.denied(), [MAX_LEN as u64 + 10, 1, 3, 0]);
    }
}
