//! The cluster map: the control plane's replicated state machine (REPLICATION.md, "The
//! cluster map"). For each stripe: its epoch, its active and its in-sync set. Every change
//! is a [`Proposal`] with a precondition, checked when the entry is applied, so two
//! proposals decided on the same stale view cannot both take effect.
//!
//! The map also holds the slot layout: every stripe's slot ranges, with a digest. The
//! leader commits its config's layout when there is none, and a new one once every
//! configured server reports that same layout (a config change rolled out everywhere). A
//! server whose config gives another layout refuses keyed commands meanwhile, instead of
//! writing keys of a stripe the rest of the cluster does not send them to.

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
}

/// The slot layout: every stripe's slots as sorted inclusive ranges, and a digest of it
/// that servers report and compare. Its `Debug` is a summary: a few hundred ranges would
/// drown the log lines that show a proposal.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// CRC32C of the stripes' names and ranges.
    pub digest: u32,
    /// Stripe name → its ranges.
    pub stripes: BTreeMap<String, Vec<(u16, u16)>>,
}

impl Layout {
    /// The layout of `stripes`, with its digest.
    pub fn new(stripes: BTreeMap<String, Vec<(u16, u16)>>) -> Layout {
        let mut bytes = Vec::new();
        for (name, ranges) in &stripes {
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(0);
            for (a, b) in ranges {
                bytes.extend_from_slice(&a.to_le_bytes());
                bytes.extend_from_slice(&b.to_le_bytes());
            }
            bytes.push(0xff);
        }
        Layout {
            digest: crc32c::crc32c(&bytes),
            stripes,
        }
    }

    /// Why the layout is not a partition of all slots into sorted, disjoint ranges, if it
    /// is not (a proposal can come from any member: it is checked before it applies).
    fn invalid(&self) -> Option<String> {
        if Layout::new(self.stripes.clone()).digest != self.digest {
            return Some("its digest does not match its ranges".into());
        }
        let mut all: Vec<(u16, u16)> = self.stripes.values().flatten().copied().collect();
        all.sort_unstable();
        if all
            .iter()
            .any(|&(a, b)| a > b || usize::from(b) >= crate::cluster::slots::SLOTS)
        {
            return Some("a range is inverted or past the last slot".into());
        }
        if all.windows(2).any(|w| w[0].1 >= w[1].0) {
            return Some("two ranges overlap".into());
        }
        let covered: usize = all.iter().map(|&(a, b)| usize::from(b - a) + 1).sum();
        if covered != crate::cluster::slots::SLOTS {
            return Some(format!("it covers {covered} slots, not all"));
        }
        None
    }
}

impl std::fmt::Debug for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: usize = self.stripes.values().map(Vec::len).sum();
        write!(
            f,
            "Layout({:08x}: {} stripes, {ranges} ranges)",
            self.digest,
            self.stripes.len()
        )
    }
}

/// The whole map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMap {
    /// Stripe name → entry; a stripe without an entry has never had an active.
    pub stripes: BTreeMap<String, StripeEntry>,
    /// The slot layout, once committed (none in a map written before layouts were kept:
    /// the leader commits one).
    #[serde(default)]
    pub layout: Option<Layout>,
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
    },
    /// The slot layout becomes `layout`; requires the committed digest to be `seen`
    /// (`None`: no layout yet) and `layout` to be valid.
    SetLayout {
        /// The digest the proposer saw.
        seen: Option<u32>,
        /// The new layout.
        layout: Layout,
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
            } => {
                if let Some(e) = self.stripes.get(stripe) {
                    return Outcome::Refused(format!(
                        "stripe {stripe} already has active {} at epoch {}",
                        e.active, e.epoch
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
            Proposal::SetLayout { seen, layout } => {
                let now = self.layout.as_ref().map(|l| l.digest);
                if now != *seen {
                    return Outcome::Refused(format!("the layout is {now:08x?}, not {seen:08x?}"));
                }
                if let Some(why) = layout.invalid() {
                    return Outcome::Refused(format!("invalid layout: {why}"));
                }
                self.layout = Some(layout.clone());
                Outcome::Applied { epoch: 0 }
            }
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
    fn a_layout_changes_only_from_the_digest_seen_and_only_to_a_valid_one() {
        let layout = |v: &[(&str, Vec<(u16, u16)>)]| {
            Layout::new(v.iter().map(|(n, r)| (n.to_string(), r.clone())).collect())
        };
        let one = layout(&[("s", vec![(0, 9), (20, 16383)]), ("t", vec![(10, 19)])]);
        let two = layout(&[("s", vec![(0, 16383)])]);
        assert_ne!(one.digest, two.digest);
        let mut m = ClusterMap::default();
        let set = |seen, layout: &Layout| Proposal::SetLayout {
            seen,
            layout: layout.clone(),
        };
        assert!(matches!(m.apply(&set(Some(1), &one)), Outcome::Refused(_)));
        assert_eq!(m.apply(&set(None, &one)), Outcome::Applied { epoch: 0 });
        assert!(
            matches!(m.apply(&set(None, &two)), Outcome::Refused(_)),
            "decided on a stale view"
        );
        assert_eq!(
            m.apply(&set(Some(one.digest), &two)),
            Outcome::Applied { epoch: 0 }
        );
        assert_eq!(m.layout.as_ref().map(|l| l.digest), Some(two.digest));
        let seen = Some(two.digest);
        for bad in [
            layout(&[("s", vec![(0, 9)]), ("t", vec![(9, 20)])]),
            layout(&[("s", vec![(9, 0)])]),
            layout(&[("s", vec![(0, 16384)])]),
            layout(&[("s", vec![(0, 100)])]),
            Layout {
                digest: 7,
                stripes: one.stripes.clone(),
            },
        ] {
            assert!(
                matches!(m.apply(&set(seen, &bad)), Outcome::Refused(w) if w.contains("invalid")),
                "{bad:?}"
            );
        }
        assert_eq!(
            format!("{two:?}"),
            format!("Layout({:08x}: 1 stripes, 1 ranges)", two.digest)
        );
    }

    #[test]
    fn a_map_or_an_entry_written_before_layouts_still_reads() {
        let old = r#"{"stripes":{"s":{"epoch":2,"active":"a","run":"r","in_sync":["a"]}}}"#;
        let m: ClusterMap = serde_json::from_str(old).expect("old map");
        assert_eq!(m.layout, None);
        assert_eq!(m.stripe("s").map(|e| e.epoch), Some(2));
        let init = r#"{"Init":{"stripe":"s","server":"a","run":"r","epoch":1}}"#;
        assert!(serde_json::from_str::<Proposal>(init).is_ok());
    }
}
