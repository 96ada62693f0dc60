//! The Raft leader's failure detector and promotion decisions, as a pure engine: it is fed
//! the servers' reports and the committed map, and returns the proposals to make
//! (openraft's Engine style: decide in pure code, do I/O in the runtime).
//!
//! Rules (REPLICATION.md, "Failover" and "Whole-stripe restart"):
//! - a stripe with no entry gets its first active once every server reported, or after
//!   `election_time` of this leadership: the one that was last active, else one holding
//!   data, else the first listed;
//! - an active silent for `election_time` (counted from the later of its last report and
//!   the start of this leadership, so leases granted by a former leader have expired) is
//!   replaced by the live in-sync mirror with the highest lsn, ties to config order;
//! - an active that restarted is promoted again (a new epoch) when it kept its data, else
//!   replaced like a failed one;
//! - a server that is not in the in-sync set is never promoted.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::map::{ClusterMap, Layout, Proposal};

/// State names (as in `replication::State::name`).
const ACTIVE: &str = "ACTIVE-COORDINATOR";
const STARTING: &str = "STARTING";
const UNINITIALIZED: &str = "PASSIVE-UNINITIALIZED";

/// What a server tells the leader about itself, every `election_time / 4`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Server name.
    pub server: String,
    /// Its process's run id (new at every start).
    pub run: String,
    /// Its stripe.
    pub stripe: String,
    /// Its state name.
    pub state: String,
    /// The epoch it knows.
    pub epoch: u64,
    /// Its last lsn.
    pub lsn: u64,
    /// Its data directory says it was the last active.
    pub was_active: bool,
    /// It holds data that survives a restart (restartable): a restarted active that
    /// kept its data may be promoted again.
    pub durable: bool,
    /// It holds a synced copy of this epoch's log: it is the active, or a mirror that
    /// reached PASSIVE-STANDBY at `epoch` and has not cleared its data since (a mirror
    /// whose link just dropped is PASSIVE-UNINITIALIZED but still synced).
    pub synced: bool,
    /// The digest of the slot layout its config gives.
    #[serde(default)]
    pub layout: u32,
}

/// A stripe as the config lays it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeLayout {
    /// Its name.
    pub name: String,
    /// Its servers, in config order.
    pub servers: Vec<String>,
}

/// A report and when it arrived (ms on the leader's monotonic clock).
#[derive(Debug, Clone)]
pub struct Heard {
    /// Arrival.
    pub at_ms: u64,
    /// The report.
    pub report: Report,
}

/// The leader's view for its decisions.
#[derive(Debug)]
pub struct Monitor {
    /// The stripes.
    stripes: Vec<StripeLayout>,
    /// The slot layout this member's config gives.
    layout: Layout,
    /// `cluster.election_time`, ms.
    election_ms: u64,
    /// When this node became leader (ms): nothing is declared failed before
    /// `election_ms` after it.
    since_ms: u64,
    /// Stripe → when a proposal for it was last made: not repeated within half the
    /// election time (a proposal in flight).
    proposed: HashMap<String, u64>,
}

impl Monitor {
    /// A monitor for a leadership that started at `since_ms`.
    pub fn new(
        stripes: Vec<StripeLayout>,
        layout: Layout,
        election_ms: u64,
        since_ms: u64,
    ) -> Monitor {
        Monitor {
            stripes,
            layout,
            election_ms,
            since_ms,
            proposed: HashMap::new(),
        }
    }

    /// The proposals to make now.
    pub fn step(
        &mut self,
        now_ms: u64,
        map: &ClusterMap,
        heard: &HashMap<String, Heard>,
    ) -> Vec<Proposal> {
        let mut out = Vec::new();
        if let Some(p) = self.relayout(now_ms, map, heard) {
            out.push(p);
        }
        for layout in &self.stripes {
            let stripe = &layout.name;
            if self
                .proposed
                .get(stripe)
                .is_some_and(|&t| now_ms.saturating_sub(t) < self.election_ms / 2)
            {
                continue;
            }
            if let Some(p) = self.decide(now_ms, map, heard, layout) {
                self.proposed.insert(stripe.clone(), now_ms);
                out.push(p);
            }
        }
        out
    }

    /// The slot layout to commit: this config's when the map has none, or when every
    /// configured server is alive and reports it (a config change rolled out everywhere).
    fn relayout(
        &mut self,
        now_ms: u64,
        map: &ClusterMap,
        heard: &HashMap<String, Heard>,
    ) -> Option<Proposal> {
        const KEY: &str = "\0layout";
        let seen = map.layout.as_ref().map(|l| l.digest);
        if seen == Some(self.layout.digest)
            || self
                .proposed
                .get(KEY)
                .is_some_and(|&t| now_ms.saturating_sub(t) < self.election_ms / 2)
        {
            return None;
        }
        let everyone_agrees = || {
            self.stripes.iter().flat_map(|s| &s.servers).all(|name| {
                heard.get(name).is_some_and(|h| {
                    now_ms.saturating_sub(h.at_ms) < self.election_ms
                        && h.report.layout == self.layout.digest
                })
            })
        };
        if seen.is_some() && !everyone_agrees() {
            return None;
        }
        self.proposed.insert(KEY.to_string(), now_ms);
        Some(Proposal::SetLayout {
            seen,
            layout: self.layout.clone(),
        })
    }

    fn decide(
        &self,
        now_ms: u64,
        map: &ClusterMap,
        heard: &HashMap<String, Heard>,
        layout: &StripeLayout,
    ) -> Option<Proposal> {
        let (stripe, servers) = (layout.name.as_str(), layout.servers.as_slice());
        let alive = |name: &str| {
            heard
                .get(name)
                .filter(|h| now_ms.saturating_sub(h.at_ms) < self.election_ms)
                .map(|h| &h.report)
        };
        let index = |name: &str| servers.iter().position(|s| s == name).unwrap_or(usize::MAX);
        let patient = now_ms.saturating_sub(self.since_ms) < self.election_ms;
        let Some(entry) = map.stripe(stripe) else {
            let reported: Vec<&Report> = servers.iter().filter_map(|s| alive(s)).collect();
            if reported.is_empty() || (reported.len() < servers.len() && patient) {
                return None;
            }
            let best = reported
                .iter()
                .max_by_key(|r| (r.was_active, r.lsn > 0, std::cmp::Reverse(index(&r.server))))?;
            let epoch = reported.iter().map(|r| r.epoch).max().unwrap_or(0) + 1;
            return Some(Proposal::Init {
                stripe: stripe.to_string(),
                server: best.server.clone(),
                run: best.run.clone(),
                epoch,
            });
        };
        let promote = |r: &Report| Proposal::Promote {
            stripe: stripe.to_string(),
            server: r.server.clone(),
            run: r.run.clone(),
            epoch: entry.epoch,
        };
        // Live in-sync mirrors of this epoch holding the data: the ones that may take over.
        let best_mirror = || {
            entry
                .in_sync
                .iter()
                .filter(|s| **s != entry.active)
                .filter_map(|s| alive(s))
                .filter(|r| r.epoch == entry.epoch && holds_data(r))
                .max_by_key(|r| (r.lsn, std::cmp::Reverse(index(&r.server))))
        };
        match alive(&entry.active) {
            Some(r) if r.state == ACTIVE => None,
            // It restarted (or stepped down without clearing its data): it keeps the role at
            // a new epoch when its data survived, else a mirror that has everything takes
            // over. It is the map's active: no other server can hold a lease.
            Some(r) if r.state == STARTING || r.state == UNINITIALIZED => {
                if holds_data(r) {
                    Some(promote(r))
                } else {
                    Some(promote(best_mirror().unwrap_or(r)))
                }
            }
            // Catching up with the map (a mirror state while it applies a promotion).
            Some(_) => None,
            None => {
                let last = heard.get(&entry.active).map_or(0, |h| h.at_ms);
                let silent_since = last.max(self.since_ms);
                if now_ms.saturating_sub(silent_since) < self.election_ms {
                    return None;
                }
                best_mirror().map(promote)
            }
        }
    }
}

/// Whether a server holds its stripe's data as of its epoch: synced in this process, or
/// restarted on data that survived.
fn holds_data(r: &Report) -> bool {
    r.synced || (r.state == STARTING && r.durable)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ET: u64 = 1000;
    const STANDBY: &str = "PASSIVE-STANDBY";

    fn report(server: &str, state: &str, epoch: u64, lsn: u64) -> Report {
        Report {
            server: server.into(),
            run: format!("{server}-run"),
            stripe: "s".into(),
            state: state.into(),
            epoch,
            lsn,
            was_active: false,
            durable: true,
            synced: state == ACTIVE || state == STANDBY,
            layout: layout().digest,
        }
    }

    /// One stripe `s` owning every slot.
    fn layout() -> Layout {
        Layout::new([("s".to_string(), vec![(0, 16383)])].into())
    }

    /// A map with the layout and no stripe entry yet.
    fn empty_map() -> ClusterMap {
        ClusterMap {
            layout: Some(layout()),
            ..ClusterMap::default()
        }
    }

    fn heard(at_ms: u64, reports: &[Report]) -> HashMap<String, Heard> {
        reports
            .iter()
            .map(|r| {
                (
                    r.server.clone(),
                    Heard {
                        at_ms,
                        report: r.clone(),
                    },
                )
            })
            .collect()
    }

    fn monitor(since: u64) -> Monitor {
        Monitor::new(
            vec![StripeLayout {
                name: "s".into(),
                servers: vec!["a".into(), "b".into(), "c".into()],
            }],
            layout(),
            ET,
            since,
        )
    }

    fn map_with(active: &str, epoch: u64, in_sync: &[&str]) -> ClusterMap {
        let mut m = empty_map();
        m.stripes.insert(
            "s".into(),
            super::super::map::StripeEntry {
                epoch,
                active: active.into(),
                run: format!("{active}-run"),
                in_sync: in_sync.iter().map(|s| s.to_string()).collect(),
            },
        );
        m
    }

    #[test]
    fn the_first_active_waits_for_every_server_or_the_election_time() {
        let map = empty_map();
        let mut last = report("c", STARTING, 4, 10);
        last.was_active = true;
        let two = heard(0, &[report("a", STARTING, 0, 0), last.clone()]);
        assert!(
            monitor(0).step(10, &map, &two).is_empty(),
            "b may still come"
        );
        let all = heard(
            0,
            &[
                report("a", STARTING, 0, 0),
                report("b", STARTING, 0, 5),
                last,
            ],
        );
        assert_eq!(
            monitor(0).step(10, &map, &all),
            vec![Proposal::Init {
                stripe: "s".into(),
                server: "c".into(),
                run: "c-run".into(),
                epoch: 5,
            }],
            "the last active, above every epoch reported"
        );
        let late = heard(
            ET,
            &[report("a", STARTING, 0, 0), report("b", STARTING, 0, 0)],
        );
        assert_eq!(
            monitor(0).step(ET + 10, &map, &late),
            vec![Proposal::Init {
                stripe: "s".into(),
                server: "a".into(),
                run: "a-run".into(),
                epoch: 1,
            }],
            "after election_time: the first listed of those up"
        );
    }

    #[test]
    fn a_silent_active_is_replaced_by_the_most_caught_up_live_in_sync_mirror() {
        let map = map_with("a", 3, &["a", "b", "c"]);
        let mut m = monitor(0);
        let mut h = heard(
            100,
            &[
                report("a", ACTIVE, 3, 50),
                report("b", STANDBY, 3, 40),
                report("c", STANDBY, 3, 45),
            ],
        );
        assert!(m.step(500, &map, &h).is_empty(), "all well");
        // c's link to the dead active dropped: it looks for an active, still synced.
        if let Some(x) = h.get_mut("c") {
            x.report.state = UNINITIALIZED.into();
        }
        // a stops reporting; b and c go on.
        for s in ["b", "c"] {
            if let Some(x) = h.get_mut(s) {
                x.at_ms = 1050;
            }
        }
        assert!(
            m.step(1050, &map, &h).is_empty(),
            "a was heard 950 ms ago: not yet"
        );
        assert_eq!(
            m.step(1101, &map, &h),
            vec![Proposal::Promote {
                stripe: "s".into(),
                server: "c".into(),
                run: "c-run".into(),
                epoch: 3
            }]
        );
        assert!(
            m.step(1200, &map, &h).is_empty(),
            "not proposed twice while it is in flight"
        );
    }

    #[test]
    fn only_in_sync_mirrors_of_this_epoch_are_promoted_and_a_new_leader_waits() {
        let map = map_with("a", 3, &["a", "b"]);
        let h = heard(
            5000,
            &[
                report("b", "INITIALIZING", 3, 40),
                report("c", STANDBY, 3, 99),
            ],
        );
        assert!(
            monitor(0).step(5000, &map, &h).is_empty(),
            "b is syncing, c is not in sync: nobody may take over"
        );
        let h = heard(5000, &[report("b", STANDBY, 3, 40)]);
        assert!(
            monitor(4500).step(5000, &map, &h).is_empty(),
            "a leader of 500 ms does not know a's lease yet"
        );
        assert_eq!(
            monitor(4500).step(5600, &map, &h),
            vec![Proposal::Promote {
                stripe: "s".into(),
                server: "b".into(),
                run: "b-run".into(),
                epoch: 3
            }]
        );
    }

    #[test]
    fn a_restarted_active_keeps_the_role_only_with_its_data() {
        let map = map_with("a", 3, &["a", "b"]);
        let h = heard(
            100,
            &[report("a", STARTING, 3, 50), report("b", STANDBY, 3, 50)],
        );
        assert_eq!(
            monitor(0).step(200, &map, &h),
            vec![Proposal::Promote {
                stripe: "s".into(),
                server: "a".into(),
                run: "a-run".into(),
                epoch: 3
            }]
        );
        let mut empty = report("a", STARTING, 0, 0);
        empty.durable = false;
        let h = heard(100, &[empty, report("b", STANDBY, 3, 50)]);
        assert_eq!(
            monitor(0).step(200, &map, &h),
            vec![Proposal::Promote {
                stripe: "s".into(),
                server: "b".into(),
                run: "b-run".into(),
                epoch: 3
            }]
        );
    }

    #[test]
    fn the_layout_is_set_when_missing_and_changed_only_once_every_server_reports_it() {
        let mut mon = monitor(0);
        let none = ClusterMap::default();
        assert_eq!(
            mon.step(0, &none, &HashMap::new()),
            vec![Proposal::SetLayout {
                seen: None,
                layout: layout()
            }],
            "a map without a layout gets this config's at once"
        );
        // A committed layout from another config: changed once a, b and c all report ours.
        let old = Layout::new(
            [
                ("s".to_string(), vec![(0, 99)]),
                ("t".to_string(), vec![(100, 16383)]),
            ]
            .into(),
        );
        let mut map = map_with("a", 1, &["a"]);
        map.layout = Some(old.clone());
        let mut stale = report("c", STANDBY, 1, 0);
        stale.layout = old.digest;
        let mixed = heard(
            ET,
            &[report("a", ACTIVE, 1, 0), report("b", STANDBY, 1, 0), stale],
        );
        let mut mon = monitor(0);
        assert!(
            mon.step(ET, &map, &mixed).is_empty(),
            "c has the old config"
        );
        let all = heard(
            2 * ET,
            &[
                report("a", ACTIVE, 1, 0),
                report("b", STANDBY, 1, 0),
                report("c", STANDBY, 1, 0),
            ],
        );
        assert_eq!(
            mon.step(2 * ET, &map, &all),
            vec![Proposal::SetLayout {
                seen: Some(old.digest),
                layout: layout()
            }]
        );
    }
}
