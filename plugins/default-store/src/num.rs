//! Number parsing for incr/decr, as memcached's `safe_strtoull` sees an item.

/// C's `isspace` in the "C" locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// memcached's `safe_strtoull(ITEM_data(it))`: `strtoull` base 10 (leading
/// white space, an optional sign, digits), then the number must end at white
/// space or NUL. memcached keeps every value followed by "\r\n", so the end of
/// the value counts as white space. `strtoull` negates a '-' number modulo
/// 2^64, and memcached only rejects the result when it looks negative as an
/// i64 and a '-' appears in the string (`strchr`, up to the first NUL): "-0"
/// is 0 and "-18446744073709551615" is 1, exactly as memcached answers.
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < v.len() && is_space(v[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < v.len() && (v[i] == b'+' || v[i] == b'-') {
        neg = v[i] == b'-';
        i += 1;
    }
    let digits = i;
    let mut value: u64 = 0;
    let mut overflow = false;
    while i < v.len() && v[i].is_ascii_digit() {
        match value
            .checked_mul(10)
            .and_then(|x| x.checked_add(u64::from(v[i] - b'0')))
        {
            Some(x) => value = x,
            None => overflow = true,
        }
        i += 1;
    }
    // No digits: strtoull leaves endptr at the start. Overflow: ERANGE.
    if i == digits || overflow {
        return None;
    }
    match v.get(i) {
        None => {}
        Some(&c) if is_space(c) || c == 0 => {}
        Some(_) => return None,
    }
    let result = if neg { value.wrapping_neg() } else { value };
    if (result as i64) < 0 {
        let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
        if v[..end].contains(&b'-') {
            return None;
        }
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::parse_u64;

    #[test]
    fn accepts_what_memcached_accepts() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"42"), Some(42));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"  7"), Some(7));
        assert_eq!(parse_u64(b"\t\r\n7"), Some(7));
        assert_eq!(parse_u64(b"+7"), Some(7));
        assert_eq!(parse_u64(b"-0"), Some(0));
        // Padding left behind by an in-place decr.
        assert_eq!(parse_u64(b"99 "), Some(99));
        assert_eq!(parse_u64(b"5 trailing words"), Some(5));
        assert_eq!(parse_u64(b"5\0garbage"), Some(5));
        assert_eq!(parse_u64(b"000000000000000000000000001"), Some(1));
        // strtoull's modular negation of a small magnitude stays "positive".
        assert_eq!(parse_u64(b"-18446744073709551615"), Some(1));
        assert_eq!(
            parse_u64(b"-9223372036854775809"),
            Some(9223372036854775807)
        );
    }

    #[test]
    fn rejects_what_memcached_rejects() {
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b" "), None);
        assert_eq!(parse_u64(b"abc"), None);
        assert_eq!(parse_u64(b"12abc"), None);
        assert_eq!(parse_u64(b"1.5"), None);
        assert_eq!(parse_u64(b"0x10"), None);
        assert_eq!(parse_u64(b"-"), None);
        assert_eq!(parse_u64(b"- 1"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"99999999999999999999999"), None);
        assert_eq!(parse_u64(b"\x001"), None);
        // Big enough to look negative, with a '-' later in the value.
        assert_eq!(parse_u64(b"18446744073709551615 -"), None);
    }
}
