//! Who a fault hits: a replica (`"r2"`), a set (`["r1", "r3"]`), `"primary"` (whoever
//! is primary or leader when the fault fires), `"backups"` (every replica but that
//! one), `"random-minority"` (1 to f replicas drawn from the scenario's seed) or
//! `"all"`. The same words name targets in scenario files and in the simulator's
//! fault plans.
//!
//! Words that depend on the cluster's state are resolved when the fault fires, through
//! a [`ClusterView`] (the runner reads the replicas' live metrics; the simulator its
//! replicas' state).

use std::fmt;

use rand::Rng;
use rand::seq::SliceRandom;
use tandem_consensus::types::max_faulty;

/// A set of replicas a fault applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// These replicas, by index (one or several).
    Replicas(Vec<u32>),
    /// The primary (or leader) at the moment the fault fires.
    Primary,
    /// Every replica except the primary at that moment.
    Backups,
    /// Between 1 and f replicas, drawn from the scenario's seed.
    RandomMinority,
    /// Every replica.
    All,
}

/// The words of [`Target`], as written in scenario files.
pub const TARGET_WORDS: [&str; 4] = ["primary", "backups", "random-minority", "all"];

impl Target {
    /// Parses one word or replica id (`r2`).
    pub fn parse_word(word: &str) -> Result<Target, String> {
        match word {
            "primary" => Ok(Target::Primary),
            "backups" => Ok(Target::Backups),
            "random-minority" => Ok(Target::RandomMinority),
            "all" => Ok(Target::All),
            _ => parse_replica(word).map(|r| Target::Replicas(vec![r])),
        }
    }

    /// Parses a set of replica ids (`["r1", "r3"]`).
    pub fn parse_set<S: AsRef<str>>(ids: &[S]) -> Result<Target, String> {
        if ids.is_empty() {
            return Err("an empty set of replicas".into());
        }
        let mut out = Vec::new();
        for id in ids {
            let r = parse_replica(id.as_ref())?;
            if out.contains(&r) {
                return Err(format!("r{r} is listed twice"));
            }
            out.push(r);
        }
        Ok(Target::Replicas(out))
    }

    /// The highest replica index it names explicitly, for checking against n.
    pub fn highest_replica(&self) -> Option<u32> {
        match self {
            Target::Replicas(ids) => ids.iter().copied().max(),
            _ => None,
        }
    }

    /// The replicas it names now, in increasing order; `rng` draws a random minority.
    pub fn resolve(&self, view: &dyn ClusterView, rng: &mut impl Rng) -> Vec<u32> {
        let n = view.replicas() as u32;
        let mut out: Vec<u32> = match self {
            Target::Replicas(ids) => ids.iter().copied().filter(|r| *r < n).collect(),
            Target::Primary => vec![view.primary()],
            Target::Backups => {
                let p = view.primary();
                (0..n).filter(|r| *r != p).collect()
            }
            Target::RandomMinority => {
                let f = max_faulty(n as usize).max(1);
                let count = rng.random_range(1..=f);
                let mut all: Vec<u32> = (0..n).collect();
                all.shuffle(rng);
                all.truncate(count);
                all
            }
            Target::All => (0..n).collect(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Replicas(ids) if ids.len() == 1 => write!(f, "r{}", ids[0]),
            Target::Replicas(ids) => {
                let names: Vec<String> = ids.iter().map(|r| format!("r{r}")).collect();
                write!(f, "[{}]", names.join(", "))
            }
            Target::Primary => f.write_str("primary"),
            Target::Backups => f.write_str("backups"),
            Target::RandomMinority => f.write_str("random-minority"),
            Target::All => f.write_str("all"),
        }
    }
}

/// `r<index>`.
fn parse_replica(word: &str) -> Result<u32, String> {
    let digits = word.strip_prefix('r').unwrap_or("");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{word}` is not a target: write a replica (r0, r1, …), a list of replicas, or one of {}",
            TARGET_WORDS.join(", ")
        ));
    }
    digits
        .parse()
        .map_err(|_| format!("`{word}`: replica index too large"))
}

/// What resolving a target needs to know about the cluster at that moment.
pub trait ClusterView {
    /// Number of replicas.
    fn replicas(&self) -> usize;
    /// The replica that is primary (or leader) now.
    fn primary(&self) -> u32;
}

/// A cluster of `n` whose primary is known.
#[derive(Clone, Copy, Debug)]
pub struct KnownPrimary {
    /// Replicas.
    pub replicas: usize,
    /// The primary.
    pub primary: u32,
}

impl ClusterView for KnownPrimary {
    fn replicas(&self) -> usize {
        self.replicas
    }
    fn primary(&self) -> u32 {
        self.primary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn words_and_ids_parse_and_print_back() {
        for word in ["r2", "primary", "backups", "random-minority", "all"] {
            assert_eq!(Target::parse_word(word).unwrap().to_string(), word);
        }
        let set = Target::parse_set(&["r1", "r3"]).unwrap();
        assert_eq!(set.to_string(), "[r1, r3]");
        assert_eq!(set.highest_replica(), Some(3));
        for bad in ["r", "x1", "r-1", "r+1", "leader", "R1"] {
            let err = Target::parse_word(bad).unwrap_err();
            assert!(err.contains(bad) && err.contains("primary"), "{err}");
        }
        assert!(
            Target::parse_set(&["r1", "r1"])
                .unwrap_err()
                .contains("twice")
        );
        assert!(Target::parse_set::<&str>(&[]).is_err());
    }

    #[test]
    fn targets_resolve_against_the_primary_of_the_moment() {
        let view = KnownPrimary {
            replicas: 4,
            primary: 1,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(Target::Primary.resolve(&view, &mut rng), vec![1]);
        assert_eq!(Target::Backups.resolve(&view, &mut rng), vec![0, 2, 3]);
        assert_eq!(Target::All.resolve(&view, &mut rng), vec![0, 1, 2, 3]);
        assert_eq!(
            Target::Replicas(vec![3, 0]).resolve(&view, &mut rng),
            vec![0, 3]
        );
    }

    #[test]
    fn a_random_minority_has_one_to_f_members_and_replays_from_its_seed() {
        let view = KnownPrimary {
            replicas: 10,
            primary: 0,
        };
        let mut sizes = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let draw =
                |seed| Target::RandomMinority.resolve(&view, &mut ChaCha8Rng::seed_from_u64(seed));
            let picked = draw(seed);
            assert!((1..=3).contains(&picked.len()), "{picked:?}");
            assert_eq!(picked, draw(seed));
            sizes.insert(picked.len());
        }
        assert_eq!(sizes.len(), 3, "every size from 1 to f appears");
    }
}
