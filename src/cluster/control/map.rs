//! The cluster map: the control plane's replicated state machine (REPLICATION.md, "The
//! cluster map"). For each stripe: its epoch, its active and its in-sync set. Every change
//! is a [`Proposal`] with a precondition, checked when the entry is applied, so two
//! proposals decided on the same stale view cannot both take effect.
//!
//! Each entry also holds its stripe's slot ranges, fixed by `Init`: the first leader's
//! config decides, and a server whose config gives another slot map (a stripe added on
//! some servers only) finds out and refuses keyed commands instead of writing a key in a
//! stripe that the rest of the cluster does not send it to.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One stripe's entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeEntry {
    /// Raised by every promotion; records and leases carry it (fencing).
    pub epoch: u64,
    /// The server that takes the stripe's writes at this epoch.
    pub active: String,
    /// The run id of the active's process the promotion was decided for: a server takes
    /// the role only in that process, so a restarted one (a new run id, maybe without its
    /// data) waits to be promoted again, at a new epoch.
    pub run: String,
    /// Servers holding every acknowledged strong write: the active and the mirrors whose
    /// `AddInSync` committed. Only these can be promoted.
    pub in_sync: BTreeSet<String>,
    /// The stripe's hash slots, as inclusive ranges in order (empty in a map written
    /// before slot ranges were kept).
    #[serde(default)]
    pub slots: SlotRanges,
}

/// A stripe's slots as sorted inclusive ranges. Its `Debug` is a summary: a few hundred
/// ranges would drown the log lines that show a proposal.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SlotRanges(pub Vec<(u16, u16)>);

impl std::fmt::Debug for SlotRanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slots: u32 = self.0.iter().map(|(a, b)| u32::from(b - a) + 1).sum();
        write!(f, "{slots} slots in {} ranges", self.0.len())
    }
}

/// The whole map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMap {
    /// Stripe name → entry; a stripe without an entry has never had an active.
    pub stripes: BTreeMap<String, StripeEntry>,
}

/// A change to the map. Each is applied only if its precondition holds at commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proposal {
    /// The stripe's first active (no entry yet). `epoch` is above every epoch its servers
    /// reported, so records of an earlier life of the cluster are fenced.
    Init {
        /// Stripe name.
        stripe: String,
        /// The chosen server.
        server: String,
        /// Its process's run id.
        run: String,
        /// The first epoch.
        epoch: u64,
        /// The stripe's slot ranges in the proposer's config; refused when they overlap
        /// another stripe's.
        slots: SlotRanges,
    },
    /// `server` becomes active at `epoch + 1`; requires `map.epoch == epoch` and
    /// `server ∈ in_sync`.
    Promote {
        /// Stripe name.
        stripe: String,
        /// The server to promote.
        server: String,
        /// Its process's run id.
        run: String,
        /// The epoch the proposer saw.
        epoch: u64,
    },
    /// A caught-up mirror joins the in-sync set; requires `map.epoch == epoch`.
    AddInSync {
        /// Stripe name.
        stripe: String,
        /// The mirror.
        server: String,
        /// The epoch the proposer (the active) saw.
        epoch: u64,
    },
    /// A mirror leaves the in-sync set; requires `map.epoch == epoch` and that it is not
    /// the active.
    RemoveInSync {
        /// Stripe name.
        stripe: String,
        /// The mirror.
        server: String,
        /// The epoch the proposer (the active) saw.
        epoch: u64,
    },
}

/// What applying a proposal did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// It took effect; the stripe is now at this epoch.
    Applied {
        /// The stripe's epoch after the change.
        epoch: u64,
    },
    /// Its precondition failed (the map moved on), with why.
    Refused(String),
}

impl ClusterMap {
    /// The entry of `stripe`.
    pub fn stripe(&self, stripe: &str) -> Option<&StripeEntry> {
        self.stripes.get(stripe)
    }

    /// Applies `p` if its precondition holds.
    pub fn apply(&mut self, p: &Proposal) -> Outcome {
        match p {
            Proposal::Init {
                stripe,
                server,
                run,
                epoch,
                slots,
            } => {
                if let Some(e) = self.stripes.get(stripe) {
                    return Outcome::Refused(format!(
                        "stripe {stripe} already has active {} at epoch {}",
                        e.active, e.epoch
                    ));
                }
                if let Some((other, _)) = self
                    .stripes
                    .iter()
                    .find(|(_, e)| overlaps(&e.slots.0, &slots.0))
                {
                    return Outcome::Refused(format!(
                        "stripe {stripe}'s slots overlap stripe {other}'s: the servers' configs give different slot maps"
                    ));
                }
                let epoch = (*epoch).max(1);
                self.stripes.insert(
                    stripe.clone(),
                    StripeEntry {
                        epoch,
                        active: server.clone(),
                        run: run.clone(),
                        in_sync: BTreeSet::from([server.clone()]),
                        slots: slots.clone(),
                    },
                );
                Outcome::Applied { epoch }
            }
            Proposal::Promote {
                stripe,
                server,
                run,
                epoch,
            } => match self.checked(stripe, *epoch) {
                Err(why) => Outcome::Refused(why),
                Ok(e) if !e.in_sync.contains(server) => Outcome::Refused(format!(
                    "{server} is not in stripe {stripe}'s in-sync set {:?}",
                    e.in_sync
                )),
                Ok(e) => {
                    e.epoch += 1;
                    e.active = server.clone();
                    e.run = run.clone();
                    e.in_sync = BTreeSet::from([server.clone()]);
                    Outcome::Applied { epoch: e.epoch }
                }
            },
            Proposal::AddInSync {
                stripe,
                server,
                epoch,
            } => match self.checked(stripe, *epoch) {
                Err(why) => Outcome::Refused(why),
                Ok(e) => {
                    e.in_sync.insert(server.clone());
                    Outcome::Applied { epoch: e.epoch }
                }
            },
            Proposal::RemoveInSync {
                stripe,
                server,
                epoch,
            } => match self.checked(stripe, *epoch) {
                Err(why) => Outcome::Refused(why),
                Ok(e) if e.active == *server => {
                    Outcome::Refused(format!("{server} is stripe {stripe}'s active"))
                }
                Ok(e) => {
                    e.in_sync.remove(server);
                    Outcome::Applied { epoch: e.epoch }
                }
            },
        }
    }

    fn checked(&mut self, stripe: &str, epoch: u64) -> Result<&mut StripeEntry, String> {
        let e = self
            .stripes
            .get_mut(stripe)
            .ok_or_else(|| format!("stripe {stripe} has no active yet"))?;
        if e.epoch != epoch {
            return Err(format!(
                "stripe {stripe} is at epoch {}, not {epoch}",
                e.epoch
            ));
        }
        Ok(e)
    }
}

/// Whether two sorted lists of inclusive ranges share a slot.
fn overlaps(a: &[(u16, u16)], b: &[(u16, u16)]) -> bool {
    let (mut i, mut j) = (0, 0);
    while let (Some(&(a0, a1)), Some(&(b0, b1))) = (a.get(i), b.get(j)) {
        if a0 <= b1 && b0 <= a1 {
            return true;
        }
        if a1 < b1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn promote(server: &str, epoch: u64) -> Proposal {
        Proposal::Promote {
            stripe: "s".into(),
            server: server.into(),
            run: format!("{server}-run"),
            epoch,
        }
    }

    #[test]
    fn init_once_then_promote_only_in_sync_servers_at_the_current_epoch() {
        let mut m = ClusterMap::default();
        let init = Proposal::Init {
            stripe: "s".into(),
            server: "a".into(),
            run: "r".into(),
            epoch: 3,
            slots: SlotRanges(vec![(0, 99)]),
        };
        assert_eq!(m.apply(&init), Outcome::Applied { epoch: 3 });
        assert!(matches!(m.apply(&init), Outcome::Refused(_)), "only once");
        assert!(
            matches!(m.apply(&promote("b", 3)), Outcome::Refused(w) if w.contains("in-sync")),
            "b never joined the in-sync set"
        );
        let add = Proposal::AddInSync {
            stripe: "s".into(),
            server: "b".into(),
            epoch: 3,
        };
        assert_eq!(m.apply(&add), Outcome::Applied { epoch: 3 });
        assert!(
            matches!(m.apply(&promote("b", 2)), Outcome::Refused(w) if w.contains("epoch 3")),
            "a stale epoch is refused"
        );
        assert_eq!(m.apply(&promote("b", 3)), Outcome::Applied { epoch: 4 });
        let e = m.stripe("s").expect("entry");
        assert_eq!((e.active.as_str(), e.run.as_str()), ("b", "b-run"));
        assert_eq!(e.in_sync, BTreeSet::from(["b".to_string()]));
        assert!(
            matches!(m.apply(&promote("b", 3)), Outcome::Refused(_)),
            "two promotions decided on the same view: the second is refused"
        );
    }

    #[test]
    fn the_active_cannot_leave_the_in_sync_set_and_stale_removals_are_refused() {
        let mut m = ClusterMap::default();
        m.apply(&Proposal::Init {
            stripe: "s".into(),
            server: "a".into(),
            run: "r".into(),
            epoch: 1,
            slots: SlotRanges::default(),
        });
        m.apply(&Proposal::AddInSync {
            stripe: "s".into(),
            server: "b".into(),
            epoch: 1,
        });
        let rm = |server: &str, epoch| Proposal::RemoveInSync {
            stripe: "s".into(),
            server: server.into(),
            epoch,
        };
        assert!(matches!(m.apply(&rm("a", 1)), Outcome::Refused(_)));
        assert!(matches!(m.apply(&rm("b", 0)), Outcome::Refused(_)));
        assert_eq!(m.apply(&rm("b", 1)), Outcome::Applied { epoch: 1 });
        assert!(!m.stripe("s").expect("entry").in_sync.contains("b"));
        assert!(matches!(
            m.apply(&Proposal::AddInSync {
                stripe: "t".into(),
                server: "b".into(),
                epoch: 1
            }),
            Outcome::Refused(_)
        ));
    }

    #[test]
    fn a_stripe_whose_slots_overlap_another_stripes_is_refused() {
        let mut m = ClusterMap::default();
        let init = |stripe: &str, slots: Vec<(u16, u16)>| Proposal::Init {
            stripe: stripe.into(),
            server: format!("{stripe}a"),
            run: "r".into(),
            epoch: 1,
            slots: SlotRanges(slots),
        };
        assert_eq!(
            m.apply(&init("s", vec![(0, 9), (20, 29)])),
            Outcome::Applied { epoch: 1 }
        );
        assert!(matches!(
            m.apply(&init("t", vec![(10, 19), (25, 25)])),
            Outcome::Refused(w) if w.contains("overlap stripe s")
        ));
        assert_eq!(
            m.apply(&init("t", vec![(10, 19), (30, 40)])),
            Outcome::Applied { epoch: 1 }
        );
        assert_eq!(
            m.stripe("t").map(|e| e.slots.0.clone()),
            Some(vec![(10, 19), (30, 40)])
        );
        assert_eq!(
            format!("{:?}", SlotRanges(vec![(0, 9), (20, 20)])),
            "11 slots in 2 ranges"
        );
        assert!(!overlaps(&[(0, 0)], &[]));
        assert!(overlaps(&[(5, 5)], &[(0, 3), (5, 9)]));
    }
}
