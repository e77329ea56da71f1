//! The server-administration commands whose arguments need parsing:
//! `flush_all`, `cache_memlimit`, `stats`, `slabs`, `lru_crawler`, `watch`,
//! `lru` and `extstore` (memcached's `process_*_command` for each).

use super::command::line_err;
use super::command::{
    Command, DetailOp, LruCmd, LruCrawlerCmd, Parsed, SlabsCmd, StatsCmd, WatchFlags,
};
use super::reply::*;
use super::tokens::Tokens;
use crate::limits::MAX_NUMBER_OF_SLAB_CLASSES;
use crate::num::{safe_strtod, safe_strtol, safe_strtoul};

/// `process_flush_all_command`: the delay is parsed only when the token count says there is
/// one — `flush_all noreply` has none, but `flush_all noreply noreply` tries to parse the
/// first `noreply` (and silently fails). A third token that is not `noreply` is ignored.
pub(super) fn parse_flush_all<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let noreply = t.noreply();
    let delay = if t.ntokens() != if noreply { 3 } else { 2 } {
        safe_strtol(t.tok(1)).ok_or(INVALID_EXPTIME)
    } else {
        Ok(0)
    };
    Parsed::Cmd {
        cmd: Command::FlushAll { delay, noreply },
        consumed: line_len,
    }
}

/// `process_memlimit_command`: unparsable is plain `ERROR`; the value is a `uint32_t`
/// (so `4294967296` is 0, too small).
pub(super) fn parse_memlimit<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let noreply = t.noreply();
    match safe_strtoul(t.tok(1)) {
        None => line_err(ERROR, noreply, line_len),
        Some(m) if m < 8 => line_err(MEMLIMIT_TOO_SMALL, noreply, line_len),
        Some(m) if m > 1_000_000_000 => line_err(MEMLIMIT_NOT_BYTES, noreply, line_len),
        Some(megabytes) => Parsed::Cmd {
            cmd: Command::CacheMemlimit { megabytes, noreply },
            consumed: line_len,
        },
    }
}

/// `process_stat`. Only the second token picks the sub-command; extra tokens are ignored
/// (`stats reset x` resets). `stats` never honours `noreply` (`stats noreply` is an unknown
/// sub-command: `ERROR`).
pub(super) fn parse_stats<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let nt = t.ntokens();
    let sub = t.tok(1);
    let s = if nt == 2 {
        StatsCmd::General
    } else {
        match sub {
            b"reset" => StatsCmd::Reset,
            b"detail" => {
                let op = if nt < 4 { &b""[..] } else { t.tok(2) };
                match op {
                    b"on" => StatsCmd::Detail(DetailOp::On),
                    b"off" => StatsCmd::Detail(DetailOp::Off),
                    b"dump" => StatsCmd::Detail(DetailOp::Dump),
                    _ => return line_err(STATS_DETAIL_USAGE, false, line_len),
                }
            }
            b"settings" => StatsCmd::Settings,
            b"cachedump" => StatsCmd::Cachedump(if nt < 5 {
                Err(BAD_COMMAND_LINE)
            } else {
                match (safe_strtoul(t.tok(2)), safe_strtoul(t.tok(3))) {
                    (Some(id), Some(_)) if id >= MAX_NUMBER_OF_SLAB_CLASSES => Err(ILLEGAL_SLAB_ID),
                    (Some(id), Some(limit)) => Ok((id, limit)),
                    _ => Err(BAD_FORMAT),
                }
            }),
            b"conns" => StatsCmd::Conns,
            other => StatsCmd::Other(other),
        }
    };
    Parsed::Cmd {
        cmd: Command::Stats(s),
        consumed: line_len,
    }
}

/// `process_slabs_command` / `process_slabs_automove_command`.
pub(super) fn parse_slabs<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let nt = t.ntokens();
    let ok = |s| Parsed::Cmd {
        cmd: Command::Slabs(s),
        consumed: line_len,
    };
    if nt == 5 && t.tok(1) == b"reassign" {
        let r = match (safe_strtol(t.tok(2)), safe_strtol(t.tok(3))) {
            (Some(src), Some(dst)) => Ok((src, dst)),
            _ => Err(BAD_FORMAT),
        };
        return ok(SlabsCmd::Reassign(r));
    }
    if nt >= 4 && t.tok(1) == b"automove" {
        let noreply = t.noreply();
        if t.tok(2) == b"ratio" {
            return match if nt < 5 { None } else { safe_strtod(t.tok(3)) } {
                Some(ratio) => ok(SlabsCmd::AutomoveRatio { ratio, noreply }),
                None => line_err(ERROR, noreply, line_len),
            };
        }
        return match safe_strtoul(t.tok(2)) {
            None => line_err(BAD_FORMAT, noreply, line_len),
            Some(level) if level <= 2 => ok(SlabsCmd::Automove { level, noreply }),
            Some(_) => line_err(ERROR, noreply, line_len),
        };
    }
    line_err(ERROR, false, line_len)
}

/// `process_lru_crawler_command`: exact token counts, no `noreply`.
pub(super) fn parse_lru_crawler<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let nt = t.ntokens();
    let ok = |c| Parsed::Cmd {
        cmd: Command::LruCrawler(c),
        consumed: line_len,
    };
    let sub = t.tok(1);
    if nt == 4 {
        match sub {
            b"crawl" => return ok(LruCrawlerCmd::Crawl { classes: t.tok(2) }),
            b"metadump" => return ok(LruCrawlerCmd::Metadump { classes: t.tok(2) }),
            b"tocrawl" => {
                return match safe_strtoul(t.tok(2)) {
                    Some(n) => ok(LruCrawlerCmd::Tocrawl(n)),
                    None => line_err(BAD_FORMAT, false, line_len),
                }
            }
            b"sleep" => {
                return match safe_strtoul(t.tok(2)) {
                    None => line_err(BAD_FORMAT, false, line_len),
                    Some(us) if us > 1_000_000 => line_err(CRAWLER_SLEEP, false, line_len),
                    Some(us) => ok(LruCrawlerCmd::Sleep(us)),
                }
            }
            _ => {}
        }
    } else if nt == 3 {
        match sub {
            b"enable" => return ok(LruCrawlerCmd::Enable),
            b"disable" => return ok(LruCrawlerCmd::Disable),
            _ => {}
        }
    }
    line_err(ERROR, false, line_len)
}

/// `process_watch_command`: each token after `watch` (up to the 23-token limit) must name
/// a log stream; none means `fetchers`.
pub(super) fn parse_watch<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let noreply = t.noreply();
    let mut f = 0u16;
    let mut streams = Ok(WatchFlags(WatchFlags::FETCHERS));
    if t.ntokens() > 2 {
        for name in &t.as_slice()[1..] {
            f |= match *name {
                b"rawcmds" => WatchFlags::RAWCMDS,
                b"evictions" => WatchFlags::EVICTIONS,
                b"fetchers" => WatchFlags::FETCHERS,
                b"mutations" => WatchFlags::MUTATIONS,
                b"sysevents" => WatchFlags::SYSEVENTS,
                b"connevents" => WatchFlags::CONNEVENTS,
                b"proxyreqs" => WatchFlags::PROXYREQS,
                b"proxyevents" => WatchFlags::PROXYEVENTS,
                b"proxyuser" => WatchFlags::PROXYUSER,
                _ => {
                    streams = Err(ERROR);
                    break;
                }
            };
        }
        if streams.is_ok() {
            streams = Ok(WatchFlags(f));
        }
    }
    Parsed::Cmd {
        cmd: Command::Watch { streams, noreply },
        consumed: line_len,
    }
}

/// `process_lru_command`. Sums and comparisons as memcached does them: the percentages add
/// as `uint32_t` (so `4294967295 2` passes), and a NaN factor is not `<= 0`.
pub(super) fn parse_lru<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let nt = t.ntokens();
    let noreply = t.noreply();
    let ok = |c| Parsed::Cmd {
        cmd: Command::Lru(c),
        consumed: line_len,
    };
    match t.tok(1) {
        b"tune" if nt >= 7 => {
            match (
                safe_strtoul(t.tok(2)),
                safe_strtoul(t.tok(3)),
                safe_strtod(t.tok(4)),
                safe_strtod(t.tok(5)),
            ) {
                (Some(pct_hot), Some(pct_warm), Some(hot_factor), Some(warm_factor)) => {
                    if pct_hot.wrapping_add(pct_warm) > 80 {
                        line_err(LRU_PCTS, noreply, line_len)
                    } else if warm_factor <= 0.0 || hot_factor <= 0.0 {
                        line_err(LRU_FACTORS, noreply, line_len)
                    } else {
                        ok(LruCmd::Tune {
                            pct_hot,
                            pct_warm,
                            hot_factor,
                            warm_factor,
                            noreply,
                        })
                    }
                }
                _ => line_err(ERROR, noreply, line_len),
            }
        }
        b"mode" if nt >= 4 => match t.tok(2) {
            b"flat" => ok(LruCmd::Mode {
                segmented: false,
                noreply,
            }),
            b"segmented" => ok(LruCmd::Mode {
                segmented: true,
                noreply,
            }),
            _ => line_err(ERROR, noreply, line_len),
        },
        b"temp_ttl" if nt >= 4 => match safe_strtol(t.tok(2)) {
            Some(ttl) => ok(LruCmd::TempTtl { ttl, noreply }),
            None => line_err(ERROR, noreply, line_len),
        },
        _ => line_err(ERROR, noreply, line_len),
    }
}

/// `process_extstore_command` (Debian builds memcached with extstore): `OK` when the
/// setting name and value parse, `ERROR` otherwise. wasmcached has no external storage, so
/// the host just answers `OK`.
pub(super) fn parse_extstore<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let nt = t.ntokens();
    let noreply = t.noreply();
    let v = t.tok(2);
    let valid = nt >= 4
        && match t.tok(1) {
            b"free_memchunks" if nt > 4 => {
                matches!((safe_strtoul(v), safe_strtoul(t.tok(3))),
                         (Some(cls), Some(_)) if cls < MAX_NUMBER_OF_SLAB_CLASSES)
            }
            b"item_size" | b"item_age" | b"low_ttl" | b"recache_rate" | b"compact_under"
            | b"drop_under" | b"max_sleep" | b"drop_unread" => safe_strtoul(v).is_some(),
            b"max_frag" => safe_strtod(v).is_some(),
            _ => false,
        };
    if valid {
        Parsed::Cmd {
            cmd: Command::Extstore { noreply },
            consumed: line_len,
        }
    } else {
        line_err(ERROR, noreply, line_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::test_util::*;

    #[test]
    fn flush_all() {
        let ok = |d: i32, nr: bool| {
            format!(
                "{:?}",
                Command::FlushAll {
                    delay: Ok(d),
                    noreply: nr
                }
            )
        };
        let bad = |nr: bool| {
            format!(
                "{:?}",
                Command::FlushAll {
                    delay: Err(INVALID_EXPTIME),
                    noreply: nr
                }
            )
        };
        assert_eq!(run(b"flush_all\r\n"), vec![ok(0, false)]);
        assert_eq!(run(b"flush_all 0\r\n"), vec![ok(0, false)]);
        assert_eq!(run(b"flush_all -1\r\n"), vec![ok(-1, false)]);
        assert_eq!(run(b"flush_all 4294967296\r\n"), vec![ok(0, false)]);
        assert_eq!(run(b"flush_all 1\t\r\n"), vec![ok(1, false)]);
        assert_eq!(run(b"flush_all abc\r\n"), vec![bad(false)]);
        assert_eq!(run(b"flush_all noreply\r\n"), vec![ok(0, true)]);
        assert_eq!(run(b"flush_all abc noreply\r\n"), vec![bad(true)]);
        assert_eq!(run(b"flush_all 0 noreply\r\n"), vec![ok(0, true)]);
        assert_eq!(run(b"flush_all 0 0\r\n"), vec![ok(0, false)]);
        assert_eq!(run(b"flush_all 0 x\r\n"), vec![ok(0, false)]);
        assert_eq!(run(b"flush_all noreply noreply\r\n"), vec![bad(true)]);
        // `noreply\t` is not noreply: the delay "noreply\t" is parsed and fails (memcached
        // answered CLIENT_ERROR invalid exptime argument)
        assert_eq!(run(b"flush_all noreply\t\r\n"), vec![bad(false)]);
        assert_eq!(run(b"flush_all 1 2 3\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"flush_all\t\r\n"), vec!["ERROR"]);
    }

    #[test]
    fn cache_memlimit() {
        assert_eq!(run(b"cache_memlimit\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"cache_memlimit 1 2 3\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"cache_memlimit abc\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"cache_memlimit -1\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"cache_memlimit x noreply\r\n"), vec!["!ERROR"]);
        assert_eq!(run(b"cache_memlimit 7\r\n"), vec![MEMLIMIT_TOO_SMALL]);
        assert_eq!(
            run(b"cache_memlimit 4294967296\r\n"),
            vec![MEMLIMIT_TOO_SMALL]
        );
        assert_eq!(
            run(b"cache_memlimit 7 noreply\r\n"),
            vec![format!("!{}", MEMLIMIT_TOO_SMALL)]
        );
        assert_eq!(
            run(b"cache_memlimit 1000000001\r\n"),
            vec![MEMLIMIT_NOT_BYTES]
        );
        assert_eq!(
            run(b"cache_memlimit 8\r\n"),
            vec!["CacheMemlimit { megabytes: 8, noreply: false }"]
        );
        assert_eq!(
            run(b"cache_memlimit 64 1\r\n"),
            vec!["CacheMemlimit { megabytes: 64, noreply: false }"]
        );
        assert_eq!(
            run(b"cache_memlimit 64 noreply\r\n"),
            vec!["CacheMemlimit { megabytes: 64, noreply: true }"]
        );
    }

    #[test]
    fn stats() {
        let st = |c: StatsCmd<'static>| format!("{:?}", Command::Stats(c));
        assert_eq!(run(b"stats\r\n"), vec![st(StatsCmd::General)]);
        assert_eq!(run(b"stats  \r\n"), vec![st(StatsCmd::General)]);
        assert_eq!(run(b"stats reset\r\n"), vec![st(StatsCmd::Reset)]);
        assert_eq!(run(b"stats reset x\r\n"), vec![st(StatsCmd::Reset)]);
        assert_eq!(run(b"stats settings\r\n"), vec![st(StatsCmd::Settings)]);
        assert_eq!(run(b"stats conns\r\n"), vec![st(StatsCmd::Conns)]);
        assert_eq!(run(b"stats detail\r\n"), vec![STATS_DETAIL_USAGE]);
        assert_eq!(run(b"stats detail x\r\n"), vec![STATS_DETAIL_USAGE]);
        assert_eq!(
            run(b"stats detail on\r\n"),
            vec![st(StatsCmd::Detail(DetailOp::On))]
        );
        assert_eq!(
            run(b"stats detail on x\r\n"),
            vec![st(StatsCmd::Detail(DetailOp::On))]
        );
        assert_eq!(
            run(b"stats detail off\r\n"),
            vec![st(StatsCmd::Detail(DetailOp::Off))]
        );
        assert_eq!(
            run(b"stats detail dump\r\n"),
            vec![st(StatsCmd::Detail(DetailOp::Dump))]
        );
        assert_eq!(
            run(b"stats cachedump\r\n"),
            vec![st(StatsCmd::Cachedump(Err(BAD_COMMAND_LINE)))]
        );
        assert_eq!(
            run(b"stats cachedump 1\r\n"),
            vec![st(StatsCmd::Cachedump(Err(BAD_COMMAND_LINE)))]
        );
        assert_eq!(
            run(b"stats cachedump x 1\r\n"),
            vec![st(StatsCmd::Cachedump(Err(BAD_FORMAT)))]
        );
        assert_eq!(
            run(b"stats cachedump 1 x\r\n"),
            vec![st(StatsCmd::Cachedump(Err(BAD_FORMAT)))]
        );
        assert_eq!(
            run(b"stats cachedump -1 1\r\n"),
            vec![st(StatsCmd::Cachedump(Err(BAD_FORMAT)))]
        );
        assert_eq!(
            run(b"stats cachedump 64 1\r\n"),
            vec![st(StatsCmd::Cachedump(Err(ILLEGAL_SLAB_ID)))]
        );
        assert_eq!(
            run(b"stats cachedump 1 2 3\r\n"),
            vec![st(StatsCmd::Cachedump(Ok((1, 2))))]
        );
        assert_eq!(run(b"stats items\r\n"), vec![st(StatsCmd::Other(b"items"))]);
        assert_eq!(
            run(b"stats noreply\r\n"),
            vec![st(StatsCmd::Other(b"noreply"))]
        );
        assert_eq!(run(b"stats \t\r\n"), vec![st(StatsCmd::Other(b"\t"))]);
        assert_eq!(run(b"stats\t\r\n"), vec!["ERROR"]);
    }

    #[test]
    fn slabs() {
        let sl = |c: SlabsCmd| format!("{:?}", Command::Slabs(c));
        assert_eq!(run(b"slabs\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"slabs reassign 1\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"slabs reassign 1 2 noreply\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"slabs reassign 1 2\r\n"),
            vec![sl(SlabsCmd::Reassign(Ok((1, 2))))]
        );
        assert_eq!(
            run(b"slabs reassign -1 2\r\n"),
            vec![sl(SlabsCmd::Reassign(Ok((-1, 2))))]
        );
        assert_eq!(
            run(b"slabs reassign 4294967297 2\r\n"),
            vec![sl(SlabsCmd::Reassign(Ok((1, 2))))]
        );
        assert_eq!(
            run(b"slabs reassign a 2\r\n"),
            vec![sl(SlabsCmd::Reassign(Err(BAD_FORMAT)))]
        );
        assert_eq!(
            run(b"slabs automove 1\r\n"),
            vec![sl(SlabsCmd::Automove {
                level: 1,
                noreply: false
            })]
        );
        assert_eq!(
            run(b"slabs automove 4294967296\r\n"),
            vec![sl(SlabsCmd::Automove {
                level: 0,
                noreply: false
            })]
        );
        assert_eq!(
            run(b"slabs automove 1 noreply\r\n"),
            vec![sl(SlabsCmd::Automove {
                level: 1,
                noreply: true
            })]
        );
        assert_eq!(run(b"slabs automove 3\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"slabs automove x\r\n"), vec![BAD_FORMAT]);
        assert_eq!(run(b"slabs automove -1\r\n"), vec![BAD_FORMAT]);
        assert_eq!(
            run(b"slabs automove noreply\r\n"),
            vec![format!("!{}", BAD_FORMAT)]
        );
        assert_eq!(run(b"slabs automove ratio\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"slabs automove ratio x\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"slabs automove ratio 0.5\r\n"),
            vec![sl(SlabsCmd::AutomoveRatio {
                ratio: 0.5,
                noreply: false
            })]
        );
        assert_eq!(
            run(b"slabs automove ratio 0.5 noreply\r\n"),
            vec![sl(SlabsCmd::AutomoveRatio {
                ratio: 0.5,
                noreply: true
            })]
        );
    }

    #[test]
    fn lru() {
        assert_eq!(run(b"lru\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"lru x\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"lru mode flat\r\n"),
            vec![format!(
                "{:?}",
                Command::Lru(LruCmd::Mode {
                    segmented: false,
                    noreply: false
                })
            )]
        );
        assert_eq!(
            run(b"lru mode segmented\r\n"),
            vec![format!(
                "{:?}",
                Command::Lru(LruCmd::Mode {
                    segmented: true,
                    noreply: false
                })
            )]
        );
        assert_eq!(
            run(b"lru mode flat noreply\r\n"),
            vec![format!(
                "{:?}",
                Command::Lru(LruCmd::Mode {
                    segmented: false,
                    noreply: true
                })
            )]
        );
        assert_eq!(run(b"lru mode x\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"lru temp_ttl 10\r\n"),
            vec![format!(
                "{:?}",
                Command::Lru(LruCmd::TempTtl {
                    ttl: 10,
                    noreply: false
                })
            )]
        );
        assert_eq!(
            run(b"lru temp_ttl -1\r\n"),
            vec![format!(
                "{:?}",
                Command::Lru(LruCmd::TempTtl {
                    ttl: -1,
                    noreply: false
                })
            )]
        );
        assert_eq!(
            run(b"lru temp_ttl 4294967296\r\n"),
            vec![format!(
                "{:?}",
                Command::Lru(LruCmd::TempTtl {
                    ttl: 0,
                    noreply: false
                })
            )]
        );
        assert_eq!(run(b"lru temp_ttl x\r\n"), vec!["ERROR"]);
        let tune = |h: u32, w: u32, hf: f64, wf: f64| {
            format!(
                "{:?}",
                Command::Lru(LruCmd::Tune {
                    pct_hot: h,
                    pct_warm: w,
                    hot_factor: hf,
                    warm_factor: wf,
                    noreply: false
                })
            )
        };
        assert_eq!(
            run(b"lru tune 10 10 0.1 2\r\n"),
            vec![tune(10, 10, 0.1, 2.0)]
        );
        assert_eq!(
            run(b"lru tune 4294967295 2 0.1 2\r\n"),
            vec![tune(4294967295, 2, 0.1, 2.0)]
        );
        assert_eq!(
            run(b"lru tune 10 10 inf 2\r\n"),
            vec![tune(10, 10, f64::INFINITY, 2.0)]
        );
        assert_eq!(run(b"lru tune 10 10 nan 2\r\n").len(), 1);
        assert!(!run(b"lru tune 10 10 nan 2\r\n")[0].starts_with("ERROR"));
        assert_eq!(run(b"lru tune 50 50 0.1 2\r\n"), vec![LRU_PCTS]);
        assert_eq!(run(b"lru tune 10 10 0 2\r\n"), vec![LRU_FACTORS]);
        assert_eq!(run(b"lru tune 10 10 -1 2\r\n"), vec![LRU_FACTORS]);
        assert_eq!(run(b"lru tune 10 10 x 2\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"lru tune 10 -1 0.1 2\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"lru tune 10 10 1e999 2\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"lru tune 10 10 0.1\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"lru tune 10 10 0.1 2 noreply\r\n").len(), 1);
    }

    #[test]
    fn lru_crawler() {
        let c = |x: LruCrawlerCmd<'static>| format!("{:?}", Command::LruCrawler(x));
        assert_eq!(run(b"lru_crawler\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"lru_crawler x\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"lru_crawler crawl 1\r\n"),
            vec![c(LruCrawlerCmd::Crawl { classes: b"1" })]
        );
        assert_eq!(
            run(b"lru_crawler crawl all\r\n"),
            vec![c(LruCrawlerCmd::Crawl { classes: b"all" })]
        );
        assert_eq!(run(b"lru_crawler crawl 1 2\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"lru_crawler metadump x\r\n"),
            vec![c(LruCrawlerCmd::Metadump { classes: b"x" })]
        );
        assert_eq!(
            run(b"lru_crawler tocrawl 10\r\n"),
            vec![c(LruCrawlerCmd::Tocrawl(10))]
        );
        assert_eq!(run(b"lru_crawler tocrawl x\r\n"), vec![BAD_FORMAT]);
        assert_eq!(run(b"lru_crawler tocrawl -1\r\n"), vec![BAD_FORMAT]);
        assert_eq!(run(b"lru_crawler tocrawl 1 noreply\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"lru_crawler sleep 10\r\n"),
            vec![c(LruCrawlerCmd::Sleep(10))]
        );
        assert_eq!(
            run(b"lru_crawler sleep 1000000\r\n"),
            vec![c(LruCrawlerCmd::Sleep(1000000))]
        );
        assert_eq!(run(b"lru_crawler sleep 2000000\r\n"), vec![CRAWLER_SLEEP]);
        assert_eq!(run(b"lru_crawler sleep -1\r\n"), vec![BAD_FORMAT]);
        assert_eq!(
            run(b"lru_crawler enable\r\n"),
            vec![c(LruCrawlerCmd::Enable)]
        );
        assert_eq!(
            run(b"lru_crawler disable\r\n"),
            vec![c(LruCrawlerCmd::Disable)]
        );
        assert_eq!(run(b"lru_crawler enable x\r\n"), vec!["ERROR"]);
    }

    #[test]
    fn watch() {
        let w = |f: Result<u16, &'static str>, nr: bool| {
            format!(
                "{:?}",
                Command::Watch {
                    streams: f.map(WatchFlags),
                    noreply: nr
                }
            )
        };
        assert_eq!(run(b"watch\r\n"), vec![w(Ok(WatchFlags::FETCHERS), false)]);
        assert_eq!(
            run(b"watch rawcmds\r\n"),
            vec![w(Ok(WatchFlags::RAWCMDS), false)]
        );
        assert_eq!(
            run(b"watch evictions mutations proxyuser\r\n"),
            vec![w(
                Ok(WatchFlags::EVICTIONS | WatchFlags::MUTATIONS | WatchFlags::PROXYUSER),
                false
            )]
        );
        for name in [
            "sysevents",
            "connevents",
            "proxyreqs",
            "proxyevents",
            "fetchers",
        ] {
            assert!(
                run(format!("watch {}\r\n", name).as_bytes())[0].contains("Ok"),
                "{}",
                name
            );
        }
        assert_eq!(run(b"watch deletions\r\n"), vec![w(Err(ERROR), false)]);
        assert_eq!(run(b"watch fetchers x\r\n"), vec![w(Err(ERROR), false)]);
        // memcached said nothing at all for these two
        assert_eq!(run(b"watch noreply\r\n"), vec![w(Err(ERROR), true)]);
        assert_eq!(
            run(b"watch fetchers noreply\r\n"),
            vec![w(Err(ERROR), true)]
        );
    }

    #[test]
    fn extstore_and_refresh_certs() {
        let ok = |nr: bool| format!("{:?}", Command::Extstore { noreply: nr });
        for l in [
            "extstore item_size 10",
            "extstore free_memchunks 1 2",
            "extstore max_frag 0.5",
            "extstore drop_unread 1",
            "extstore item_age 1",
            "extstore low_ttl 1",
            "extstore recache_rate 1",
            "extstore compact_under 1",
            "extstore drop_under 1",
            "extstore max_sleep 1",
        ] {
            assert_eq!(
                run(format!("{}\r\n", l).as_bytes()),
                vec![ok(false)],
                "{}",
                l
            );
        }
        assert_eq!(run(b"extstore item_size 10 noreply\r\n"), vec![ok(true)]);
        for l in [
            "extstore",
            "extstore item_size",
            "extstore item_size x",
            "extstore foo 1",
            "extstore free_memchunks 1",
            "extstore free_memchunks 64 2",
            "extstore max_frag x",
            "extstore item_size -1",
        ] {
            assert_eq!(run(format!("{}\r\n", l).as_bytes()), vec!["ERROR"], "{}", l);
        }
        assert_eq!(run(b"extstore noreply\r\n"), vec!["!ERROR"]);
        assert_eq!(run(b"extstore item_size noreply\r\n"), vec!["!ERROR"]);
        assert_eq!(
            run(b"refresh_certs\r\n"),
            vec!["RefreshCerts { noreply: false }"]
        );
        assert_eq!(
            run(b"refresh_certs noreply\r\n"),
            vec!["RefreshCerts { noreply: true }"]
        );
    }
}
