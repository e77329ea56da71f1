//! C-compatible number parsing, as memcached does it in `util.c`: glibc's
//! `strtoul`/`strtol`/`strtoull`/`strtod` (hex floats included) behind
//! memcached's `safe_strto*` wrappers. The text and meta parsers both read
//! numbers through these, so the same token is accepted or rejected the same
//! way in every protocol. The rules are those of an LP64 system (long is 64
//! bits), which is what makes the truncations below happen.

/// C `isspace` in the "C" locale.
#[inline]
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// How a glibc base-10 integer conversion went.
enum CInt {
    /// No digits: `endptr == str`.
    NoConversion,
    /// `errno == ERANGE`.
    Range,
    /// Negative sign seen, magnitude, index just after the digits.
    Ok { neg: bool, mag: u64, end: usize },
}

/// The common front of `strtoul`/`strtol`: leading `isspace`, one optional sign, decimal
/// digits. `mag` overflowing u64 is ERANGE for every variant.
fn c_int(s: &[u8]) -> CInt {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let digits = i;
    let mut mag: u64 = 0;
    let mut overflow = false;
    while i < s.len() && s[i].is_ascii_digit() {
        match mag
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(s[i] - b'0')))
        {
            Some(m) => mag = m,
            None => overflow = true,
        }
        i += 1;
    }
    if i == digits {
        CInt::NoConversion
    } else if overflow {
        CInt::Range
    } else {
        CInt::Ok { neg, mag, end: i }
    }
}

/// The `safe_strto*` tail test: the conversion must stop at the end of the token or at an
/// `isspace` byte. So `1\tx` is accepted as 1 (only the byte after the digits is looked at).
#[inline]
fn ends_ok(s: &[u8], end: usize) -> bool {
    end == s.len() || is_c_space(s[end])
}

/// 64-bit `strtoul`/`strtoull` plus memcached's negative rule: a negative number is
/// negated modulo 2^64 by the C library (`-1` is 18446744073709551615); memcached rejects
/// it only when the result looks negative as a signed number *and* the token contains a
/// `-`. So `-0` is 0, and `-18446744073709551615` is accepted as 1.
fn safe_u64(s: &[u8]) -> Option<u64> {
    match c_int(s) {
        CInt::Ok { neg, mag, end } if ends_ok(s, end) => {
            let v = if neg { mag.wrapping_neg() } else { mag };
            if (v as i64) < 0 && s.contains(&b'-') {
                None
            } else {
                Some(v)
            }
        }
        _ => None,
    }
}

/// memcached's `safe_strtoul`: [`safe_strtoull`] rules on the 64-bit value, then stored
/// into a `uint32_t` *without a range check*: flags `4294967296` become 0 and
/// `18446744073709551615` becomes 4294967295.
pub fn safe_strtoul(s: &[u8]) -> Option<u32> {
    safe_u64(s).map(|v| v as u32)
}

/// memcached's `safe_strtoull` (see `safe_u64` above for the sign rule).
pub fn safe_strtoull(s: &[u8]) -> Option<u64> {
    safe_u64(s)
}

/// memcached's `safe_strtol`: 64-bit `strtol` (ERANGE outside i64), then stored into an
/// `int32_t` without a range check: `4294967297` becomes 1, `-9223372036854775808` 0.
/// This is why `set k 0 0 4294967297` stores a 1-byte value.
pub fn safe_strtol(s: &[u8]) -> Option<i32> {
    match c_int(s) {
        CInt::Ok { neg, mag, end } if ends_ok(s, end) => {
            let v: i64 = if neg {
                if mag > 1u64 << 63 {
                    return None;
                }
                (mag as i64).wrapping_neg()
            } else {
                if mag > i64::MAX as u64 {
                    return None;
                }
                mag as i64
            };
            Some(v as i32)
        }
        _ => None,
    }
}

/// memcached's `safe_strtod` on glibc's `strtod`: decimal with optional exponent, hex
/// floats (`0x1.8p1`), `inf`/`infinity`/`nan`/`nan(chars)` in any case; ERANGE (rejected)
/// on overflow and on underflow to zero or to a subnormal (e.g. `1e-310`). Only admin
/// commands use it (`lru tune`, `slabs automove ratio`, `extstore max_frag`). Exactness
/// limit: hex subnormals are accepted even when inexact.
pub fn safe_strtod(s: &[u8]) -> Option<f64> {
    let (v, end) = c_strtod(s)?;
    if ends_ok(s, end) {
        Some(v)
    } else {
        None
    }
}

fn starts_with_ci(s: &[u8], p: &[u8]) -> bool {
    s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p)
}

/// glibc `strtod`; `None` when no conversion or ERANGE, else (value, end index).
fn c_strtod(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut sign = 1.0f64;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        if s[i] == b'-' {
            sign = -1.0;
        }
        i += 1;
    }
    let r = &s[i..];
    if starts_with_ci(r, b"inf") {
        let n = if starts_with_ci(r, b"infinity") { 8 } else { 3 };
        return Some((sign * f64::INFINITY, i + n));
    }
    if starts_with_ci(r, b"nan") {
        let mut j = i + 3;
        if s.get(j) == Some(&b'(') {
            let mut k = j + 1;
            while k < s.len() && (s[k].is_ascii_alphanumeric() || s[k] == b'_') {
                k += 1;
            }
            if s.get(k) == Some(&b')') {
                j = k + 1;
            }
        }
        return Some((f64::NAN.copysign(sign), j));
    }
    if r.len() >= 2 && r[0] == b'0' && (r[1] | 0x20) == b'x' {
        return match hex_float(&r[2..]) {
            Some((v, n)) => {
                let v = sign * v;
                if v.is_infinite() {
                    None
                } else {
                    Some((v, i + 2 + n))
                }
            }
            // "0x" without hex digits: glibc converts the "0" and stops at the 'x'.
            None => Some((sign * 0.0, i + 1)),
        };
    }
    // Decimal: digits [. digits] [e [sign] digits], at least one mantissa digit.
    let start = i;
    let mut j = i;
    let mut nonzero = false;
    let mut mant_digits = 0;
    while j < s.len() && s[j].is_ascii_digit() {
        nonzero |= s[j] != b'0';
        mant_digits += 1;
        j += 1;
    }
    if j < s.len() && s[j] == b'.' {
        j += 1;
        while j < s.len() && s[j].is_ascii_digit() {
            nonzero |= s[j] != b'0';
            mant_digits += 1;
            j += 1;
        }
    }
    if mant_digits == 0 {
        return None;
    }
    if j < s.len() && (s[j] | 0x20) == b'e' {
        let mut k = j + 1;
        if k < s.len() && (s[k] == b'+' || s[k] == b'-') {
            k += 1;
        }
        if k < s.len() && s[k].is_ascii_digit() {
            while k < s.len() && s[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    let text = std::str::from_utf8(&s[start..j]).ok()?;
    let v: f64 = text.parse().ok()?;
    if v.is_infinite() || (nonzero && (v == 0.0 || v.abs() < f64::MIN_POSITIVE)) {
        return None; // ERANGE
    }
    Some((sign * v, j))
}

/// Hex float body after `0x`: `hex digits [. hex digits] [p [sign] digits]`.
fn hex_float(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    let mut mant: f64 = 0.0;
    let mut exp: i64 = 0;
    let mut any = false;
    while i < s.len() && s[i].is_ascii_hexdigit() {
        mant = mant * 16.0 + f64::from((s[i] as char).to_digit(16)?);
        any = true;
        i += 1;
    }
    if i < s.len() && s[i] == b'.' {
        let mut k = i + 1;
        while k < s.len() && s[k].is_ascii_hexdigit() {
            mant = mant * 16.0 + f64::from((s[k] as char).to_digit(16)?);
            exp -= 4;
            any = true;
            k += 1;
        }
        if any {
            i = k;
        }
    }
    if !any {
        return None;
    }
    if i < s.len() && (s[i] | 0x20) == b'p' {
        let mut k = i + 1;
        let mut neg = false;
        if k < s.len() && (s[k] == b'+' || s[k] == b'-') {
            neg = s[k] == b'-';
            k += 1;
        }
        if k < s.len() && s[k].is_ascii_digit() {
            let mut e: i64 = 0;
            while k < s.len() && s[k].is_ascii_digit() {
                e = (e * 10 + i64::from(s[k] - b'0')).min(1 << 20);
                k += 1;
            }
            exp += if neg { -e } else { e };
            i = k;
        }
    }
    let mut v = mant;
    let mut e = exp;
    while e > 0 && v.is_finite() {
        let step = e.min(1000);
        v *= 2f64.powi(step as i32);
        e -= step;
    }
    while e < 0 && v != 0.0 {
        let step = (-e).min(1000);
        v /= 2f64.powi(step as i32);
        e += step;
    }
    if mant != 0.0 && v == 0.0 {
        return None; // ERANGE (underflow)
    }
    Some((v, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_like_glibc() {
        // accepted / rejected by memcached's `slabs automove ratio` (safe_strtod)
        for ok in [
            "0.5",
            "nan",
            "inf",
            "INF",
            "infinity",
            "nan(abc)",
            "-nan",
            "1e1",
            "0x10",
            ".5",
            "5.",
            "2.2250738585072014e-308",
            "0e-999",
            "0x1p-1074",
            "0x1.8p1",
            "-1",
        ] {
            assert!(safe_strtod(ok.as_bytes()).is_some(), "{}", ok);
        }
        for bad in [
            "x",
            "1e999",
            "1e-999",
            "1e-310",
            "4.9e-324",
            "1e-320",
            "0x",
            "nan(",
            "0x1p99999",
            "",
            ".",
        ] {
            assert!(safe_strtod(bad.as_bytes()).is_none(), "{}", bad);
        }
        assert_eq!(safe_strtod(b"0x1.8p1"), Some(3.0));
        assert_eq!(safe_strtod(b"0x10"), Some(16.0));
        assert_eq!(safe_strtod(b"1e1"), Some(10.0));
        assert_eq!(safe_strtod(b" 2.5\t"), Some(2.5));
    }

    #[test]
    fn safe_number_helpers() {
        assert_eq!(safe_strtoul(b"4294967296"), Some(0));
        assert_eq!(safe_strtoul(b"-1"), None);
        assert_eq!(safe_strtoul(b"-0"), Some(0));
        assert_eq!(safe_strtoul(b""), None);
        assert_eq!(safe_strtoul(b"+"), None);
        assert_eq!(safe_strtoul(b"-"), None);
        assert_eq!(safe_strtoul(b" "), None);
        assert_eq!(safe_strtoul(b"\t7"), Some(7));
        assert_eq!(safe_strtoul(b"7\r"), Some(7));
        assert_eq!(safe_strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(safe_strtoull(b"18446744073709551616"), None);
        assert_eq!(safe_strtoull(b"-9223372036854775808"), None);
        assert_eq!(
            safe_strtoull(b"-9223372036854775809"),
            Some(9223372036854775807)
        );
        // the '-' rule looks at the whole token
        assert_eq!(safe_strtoull(b"18446744073709551615\t-"), None);
        assert_eq!(safe_strtoull(b"5\t-"), Some(5));
        assert_eq!(safe_strtol(b"2147483648"), Some(i32::MIN));
        assert_eq!(safe_strtol(b"-2147483649"), Some(i32::MAX));
        assert_eq!(safe_strtol(b"9223372036854775807"), Some(-1));
        assert_eq!(safe_strtol(b"9223372036854775808"), None);
        assert_eq!(safe_strtol(b"-9223372036854775808"), Some(0));
        assert_eq!(safe_strtol(b"-9223372036854775809"), None);
        assert_eq!(safe_strtol(b"99999999999999999999999"), None);
    }
}
