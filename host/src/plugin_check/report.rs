//! What the conformance kit checks against and what it reports: the
//! contract a plugin claims, each check's outcome, the tally.

/// Which checks must pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contract {
    /// Everything memcached's storage commands need.
    Full,
    /// get/set/delete/flush_all only.
    Basic,
}

/// What a run of the kit found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// A check's result: `Err` is the "expected X, got Y" text.
pub type Outcome = Result<Verdict, String>;

pub enum Verdict {
    Pass,
    Skip(String),
}

impl Report {
    /// Prints a check's line and counts it.
    pub fn record(&mut self, name: &str, outcome: Outcome) {
        match outcome {
            Ok(Verdict::Pass) => {
                println!("PASS {name}");
                self.passed += 1;
            }
            Ok(Verdict::Skip(why)) => {
                println!("SKIP {name} ({why})");
                self.skipped += 1;
            }
            Err(e) => {
                println!("FAIL {name}: {e}");
                self.failed += 1;
            }
        }
    }
}
