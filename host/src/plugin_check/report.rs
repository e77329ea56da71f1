//! What the conformance kit checks against and what it reports: the
//! contract a plugin claims, each check's outcome, the plugin's log while
//! the check ran, the tally and the exit status.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};
use wasmcached_abi::log_level;

/// Which checks must pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contract {
    /// Everything memcached's storage commands need.
    Full,
    /// get/set/delete/flush_all only.
    Basic,
}

/// One entry of a check table: its name, whether the basic contract asks
/// for it, what it checks (for `--list`), and the check.
pub struct Check<F> {
    pub name: &'static str,
    pub basic: bool,
    pub about: &'static str,
    pub run: F,
}

/// Which checks run, and how much of the plugin's log is shown.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub contract: Contract,
    /// Names from the check tables, each once.
    pub skip: Vec<&'static str>,
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            contract: Contract::Full,
            skip: Vec::new(),
            verbose: false,
        }
    }
}

/// Whether a check runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selected {
    Run,
    NotInContract,
    OnRequest,
}

impl Options {
    /// Whether the check `name` (in the basic contract: `basic`) runs. The
    /// contract decides first: a --skip of a check it leaves out changes
    /// nothing.
    pub fn select(&self, name: &str, basic: bool) -> Selected {
        if self.contract == Contract::Basic && !basic {
            Selected::NotInContract
        } else if self.skip.contains(&name) {
            Selected::OnRequest
        } else {
            Selected::Run
        }
    }
}

impl Selected {
    /// Reports a check that does not run.
    pub fn report_skip(self, name: &str, report: &mut Report) {
        match self {
            Selected::Run => {}
            Selected::NotInContract => {
                report.record(name, Ok(Verdict::Skip("not in the basic contract".into())))
            }
            Selected::OnRequest => report.skip_on_request(name),
        }
    }
}

/// What a run of the kit found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    /// Every SKIP line: not in the contract, not applicable to the plugin,
    /// or asked for with `--skip`.
    pub skipped: usize,
    /// The skips asked for with `--skip`: checks of the contract that did
    /// not run, so a pass is only partial.
    pub skipped_on_request: usize,
    /// The plugin could not be instantiated: nothing was really checked.
    pub unusable: bool,
    /// Show the plugin's log under every check, not only failed ones.
    pub verbose: bool,
}

/// A check's result: `Err` is the "expected X, got Y" text.
pub type Outcome = Result<Verdict, String>;

pub enum Verdict {
    Pass,
    Skip(String),
}

/// The exit statuses, as `--help` and README.md document them.
pub const EXIT_PASSED: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_PARTIAL: u8 = 3;

impl Report {
    /// Prints a check's line, then what the plugin logged since
    /// [`log_start`] when the check failed (or always, verbose), and counts it.
    pub fn record(&mut self, name: &str, outcome: Outcome) {
        let log = log_take();
        let failed = outcome.is_err();
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
        if failed || self.verbose {
            log.print();
        }
    }

    /// A check of the contract left out with `--skip`.
    pub fn skip_on_request(&mut self, name: &str) {
        println!("SKIP {name} (asked with --skip)");
        self.skipped += 1;
        self.skipped_on_request += 1;
    }

    pub fn summary(&self) {
        let on_request = match self.skipped_on_request {
            0 => String::new(),
            n => format!(" ({n} with --skip)"),
        };
        println!(
            "{} passed, {} failed, {} skipped{on_request}",
            self.passed, self.failed, self.skipped
        );
    }

    pub fn exit_status(&self) -> u8 {
        if self.unusable {
            EXIT_USAGE
        } else if self.failed > 0 {
            EXIT_FAILED
        } else if self.skipped_on_request > 0 {
            EXIT_PARTIAL
        } else {
            EXIT_PASSED
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_status())
    }
}

/// How many of a check's last log lines are kept: a check stops at its
/// first deviation, so the lines nearest the end explain it.
pub const LOG_LINES: usize = 50;
/// How much of one line is kept: a guest cannot flood the terminal.
const LINE_BYTES: usize = 1000;

/// What the plugin logged while one check ran.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PluginLog {
    /// The last [`LOG_LINES`] lines, each `level: text`.
    lines: VecDeque<String>,
    /// Lines that came before those.
    dropped: usize,
}

/// The log of the running check. Process-wide because a wire check's
/// plugin runs on the server's worker threads; checks run one at a time.
static LOG: Mutex<PluginLog> = Mutex::new(PluginLog {
    lines: VecDeque::new(),
    dropped: 0,
});

/// The plugin runtime's log tap ([`crate::plugin::tap_log`]).
pub fn log_tap(level: i32, msg: &str) {
    LOG.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(level, msg);
}

/// Forgets what was logged so far: the next check's log starts here.
pub fn log_start() {
    log_take();
}

fn log_take() -> PluginLog {
    std::mem::take(&mut *LOG.lock().unwrap_or_else(PoisonError::into_inner))
}

impl PluginLog {
    fn push(&mut self, level: i32, msg: &str) {
        let level = match level {
            log_level::ERROR => "error",
            log_level::WARN => "warn",
            log_level::INFO => "info",
            // The host treats every other level as debug.
            _ => "debug",
        };
        // A message with newlines is several lines of the report.
        for text in msg.split('\n') {
            let text = text.strip_suffix('\r').unwrap_or(text);
            let mut cut = text.len().min(LINE_BYTES);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let more = if cut < text.len() { " …" } else { "" };
            if self.lines.len() == LOG_LINES {
                self.lines.pop_front();
                self.dropped += 1;
            }
            self.lines
                .push_back(format!("{level}: {}{more}", &text[..cut]));
        }
    }

    /// The report lines: indented under the check's line, marked `|`.
    pub fn render(&self) -> Vec<String> {
        let earlier = match self.dropped {
            0 => None,
            1 => Some("    | … 1 earlier line".to_string()),
            n => Some(format!("    | … {n} earlier lines")),
        };
        earlier
            .into_iter()
            .chain(self.lines.iter().map(|l| format!("    | {l}")))
            .collect()
    }

    fn print(&self) {
        for line in self.render() {
            println!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_keeps_its_last_lines_and_counts_the_rest() {
        let mut log = PluginLog::default();
        for i in 0..(LOG_LINES + 7) {
            log.push(log_level::DEBUG, &format!("line {i}"));
        }
        let lines = log.render();
        assert_eq!(lines.len(), LOG_LINES + 1);
        assert_eq!(lines[0], "    | … 7 earlier lines");
        assert_eq!(lines[1], "    | debug: line 7");
        assert_eq!(
            lines.last().unwrap(),
            &format!("    | debug: line {}", LOG_LINES + 6)
        );
    }

    #[test]
    fn a_log_line_is_split_clipped_and_names_its_level() {
        let mut log = PluginLog::default();
        log.push(log_level::ERROR, "panicked at src/lib.rs:1\r\nboom");
        log.push(log_level::WARN, &"é".repeat(LINE_BYTES));
        log.push(log_level::INFO, "");
        log.push(17, "odd level");
        let lines = log.render();
        assert_eq!(lines[0], "    | error: panicked at src/lib.rs:1");
        assert_eq!(lines[1], "    | error: boom");
        // Cut at a character boundary, at most LINE_BYTES of the text.
        let clipped = &lines[2];
        assert!(clipped.starts_with("    | warn: éé") && clipped.ends_with("é …"));
        assert_eq!(
            clipped.len(),
            "    | warn: ".len() + LINE_BYTES + " …".len()
        );
        assert_eq!(lines[3], "    | info: ");
        assert_eq!(lines[4], "    | debug: odd level");
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn the_exit_status_tells_failed_from_partial_from_passed() {
        let mut r = Report {
            passed: 3,
            skipped: 2,
            ..Report::default()
        };
        // Skips by the contract or for a missing export are not partial.
        assert_eq!(r.exit_status(), EXIT_PASSED);
        r.skipped_on_request = 1;
        assert_eq!(r.exit_status(), EXIT_PARTIAL);
        r.failed = 1;
        assert_eq!(r.exit_status(), EXIT_FAILED);
        r.unusable = true;
        assert_eq!(r.exit_status(), EXIT_USAGE);
    }
}
