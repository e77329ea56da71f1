//! TEMPORARY minimal parser used until text.rs lands.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub item_size_max: usize,
    pub cas_enabled: bool,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp { Set, Add, Replace, Append, Prepend, Cas }
pub struct Keys<'a> { rest: &'a [u8] }
impl<'a> Iterator for Keys<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        while let [b' ', r @ ..] = self.rest { self.rest = r; }
        if self.rest.is_empty() { return None; }
        let n = self.rest.iter().position(|&b| b == b' ').unwrap_or(self.rest.len());
        let (k, r) = self.rest.split_at(n);
        self.rest = r;
        Some(k)
    }
}
pub enum Command<'a> {
    Get { keys: Keys<'a>, with_cas: bool, then_error: Option<&'static str> },
    Gat { exptime: i64, keys: Keys<'a>, with_cas: bool, then_error: Option<&'static str> },
    Store { op: StoreOp, key: &'a [u8], flags: u32, exptime: i64, cas: u64, value: &'a [u8], noreply: bool },
    TooLarge { key: &'a [u8], set: bool },
    Delete { key: &'a [u8], noreply: bool },
    Arith { key: &'a [u8], delta: u64, incr: bool, noreply: bool },
    Touch { key: &'a [u8], exptime: i64, noreply: bool },
    FlushAll { delay: i64, noreply: bool },
    CacheMemlimit { megabytes: u64, noreply: bool },
    Stats { args: &'a [u8] },
    Version,
    Verbosity { level: u32, noreply: bool },
    Quit,
    Shutdown { graceful: bool },
    Meta { line: &'a [u8] },
}
pub enum Parsed<'a> {
    Incomplete { need: Option<usize> },
    Cmd { cmd: Command<'a>, consumed: usize },
    Error { reply: &'static str, consumed: usize, swallow: usize, close: bool },
}
fn num<T: std::str::FromStr>(b: &[u8]) -> Option<T> { std::str::from_utf8(b).ok()?.parse().ok() }
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<'a> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > 2048 { Parsed::Error { reply: "CLIENT_ERROR line too long", consumed: buf.len(), swallow: 0, close: true } } else { Parsed::Incomplete { need: None } };
    };
    let mut line = &buf[..nl];
    if line.last() == Some(&b'\r') { line = &line[..line.len() - 1]; }
    let consumed = nl + 1;
    let toks: Vec<&[u8]> = line.split(|&b| b == b' ').filter(|t| !t.is_empty()).collect();
    let err = |reply| Parsed::Error { reply, consumed, swallow: 0, close: false };
    let bad = err("CLIENT_ERROR bad command line format");
    let Some(&cmd) = toks.first() else { return err("ERROR") };
    let noreply = toks.last() == Some(&&b"noreply"[..]);
    let keyok = |k: &[u8]| k.len() <= 250;
    match cmd {
        b"get" | b"gets" if toks.len() >= 2 => {
            if !toks[1..].iter().all(|k| keyok(k)) { return bad; }
            let rest = &line[line.iter().position(|&b| b == b' ').unwrap()..];
            Parsed::Cmd { cmd: Command::Get { keys: Keys { rest }, with_cas: cmd == b"gets", then_error: None }, consumed }
        }
        b"gat" | b"gats" if toks.len() >= 3 => {
            let Some(exptime) = num(toks[1]) else { return err("CLIENT_ERROR invalid exptime argument") };
            let start = line.windows(toks[1].len()).position(|w| w == toks[1]).unwrap() + toks[1].len();
            Parsed::Cmd { cmd: Command::Gat { exptime, keys: Keys { rest: &line[start..] }, with_cas: cmd == b"gats", then_error: None }, consumed }
        }
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => {
            let is_cas = cmd == b"cas";
            let n = if is_cas { 6 } else { 5 };
            if toks.len() != n && toks.len() != n + 1 { return err("ERROR"); }
            let key = toks[1];
            let (Some(flags), Some(exptime), Some(vlen)) = (num::<u32>(toks[2]), num::<i64>(toks[3]), num::<i64>(toks[4])) else { return bad };
            if vlen < 0 || !keyok(key) { return bad; }
            let vlen = vlen as usize;
            let cas = if is_cas { match num::<u64>(toks[5]) { Some(c) => c, None => return bad } } else { 0 };
            let total = 48 + key.len() + 1 + vlen + 2 + if limits.cas_enabled { 8 } else { 0 };
            if total > limits.item_size_max {
                return Parsed::Error { reply: "SERVER_ERROR object too large for cache", consumed, swallow: vlen + 2, close: false };
            }
            if buf.len() < consumed + vlen + 2 { return Parsed::Incomplete { need: Some(consumed + vlen + 2) }; }
            if &buf[consumed + vlen..consumed + vlen + 2] != b"\r\n" {
                return Parsed::Error { reply: "CLIENT_ERROR bad data chunk", consumed: consumed + vlen + 2, swallow: 0, close: false };
            }
            let op = match cmd { b"set" => StoreOp::Set, b"add" => StoreOp::Add, b"replace" => StoreOp::Replace, b"append" => StoreOp::Append, b"prepend" => StoreOp::Prepend, _ => StoreOp::Cas };
            Parsed::Cmd { cmd: Command::Store { op, key, flags, exptime, cas, value: &buf[consumed..consumed + vlen], noreply: toks.len() == n + 1 && noreply }, consumed: consumed + vlen + 2 }
        }
        b"delete" if toks.len() >= 2 && keyok(toks[1]) => Parsed::Cmd { cmd: Command::Delete { key: toks[1], noreply }, consumed },
        b"incr" | b"decr" if toks.len() >= 3 => {
            let Some(delta) = num(toks[2]) else { return err("CLIENT_ERROR invalid numeric delta argument") };
            Parsed::Cmd { cmd: Command::Arith { key: toks[1], delta, incr: cmd == b"incr", noreply }, consumed }
        }
        b"touch" if toks.len() >= 3 => {
            let Some(exptime) = num(toks[2]) else { return err("CLIENT_ERROR invalid exptime argument") };
            Parsed::Cmd { cmd: Command::Touch { key: toks[1], exptime, noreply }, consumed }
        }
        b"flush_all" => {
            let delay = if toks.len() >= 2 && toks[1] != b"noreply" { match num(toks[1]) { Some(d) => d, None => return bad } } else { 0 };
            Parsed::Cmd { cmd: Command::FlushAll { delay, noreply }, consumed }
        }
        b"cache_memlimit" if toks.len() >= 2 => match num(toks[1]) { Some(m) => Parsed::Cmd { cmd: Command::CacheMemlimit { megabytes: m, noreply }, consumed }, None => bad },
        b"stats" => { let args = if toks.len() > 1 { toks[1] } else { b"" }; Parsed::Cmd { cmd: Command::Stats { args }, consumed } }
        b"version" => Parsed::Cmd { cmd: Command::Version, consumed },
        b"verbosity" if toks.len() >= 2 => Parsed::Cmd { cmd: Command::Verbosity { level: num(toks[1]).unwrap_or(0), noreply }, consumed },
        b"quit" => Parsed::Cmd { cmd: Command::Quit, consumed },
        b"shutdown" => Parsed::Cmd { cmd: Command::Shutdown { graceful: toks.get(1) == Some(&&b"graceful"[..]) }, consumed },
        _ => err("ERROR"),
    }
}
