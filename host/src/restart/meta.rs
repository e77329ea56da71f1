//! The memory file's own format: text in the manner of memcached's
//! `FILE.meta`, one `K<name> <value>` line per saved setting and clock
//! value, one `Kshard <id> <items> <bytes> <crc32>` line per shard file,
//! one `Kimage <id> <bytes> <crc32>` line per memory image, and a last
//! `Kchecksum <crc32>` line over everything before it.

use anyhow::{anyhow, bail, Result};

/// The first line of a memory file: what it is and its format version.
const MAGIC_LINE: &str = "wasmcached memory file 1";

/// One shard file as the memory file describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardFile {
    pub shard: u32,
    pub items: u64,
    pub bytes: u64,
    pub crc: u32,
}

/// One shard's memory image as the memory file describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageFile {
    pub shard: u32,
    pub bytes: u64,
    pub crc: u32,
}

/// A parsed memory file.
#[derive(Debug)]
pub(super) struct Meta {
    pub(super) values: Vec<(String, String)>,
    pub(super) shards: Vec<ShardFile>,
    pub(super) images: Vec<ImageFile>,
}

impl Meta {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn number<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        self.get(key)
            .ok_or_else(|| anyhow!("no {key} line"))?
            .parse()
            .map_err(|_| anyhow!("a bad {key} line"))
    }
}

pub(super) fn format_meta(
    values: &[(&str, String)],
    shards: &[ShardFile],
    images: &[ImageFile],
) -> String {
    let mut out = format!("{MAGIC_LINE}\n");
    for (k, v) in values {
        // A value never spans lines (a plugin path with a newline in it
        // would not be read back: such a file is refused, not misread).
        out.push_str(&format!("K{k} {}\n", v.replace('\n', " ")));
    }
    for f in shards {
        out.push_str(&format!(
            "Kshard {} {} {} {:08x}\n",
            f.shard, f.items, f.bytes, f.crc
        ));
    }
    for i in images {
        out.push_str(&format!("Kimage {} {} {:08x}\n", i.shard, i.bytes, i.crc));
    }
    let crc = crc32fast::hash(out.as_bytes());
    out.push_str(&format!("Kchecksum {crc:08x}\n"));
    out
}

/// Parses a memory file; `Err` says why it is not a good one.
pub(super) fn parse_meta(bytes: &[u8]) -> Result<Meta> {
    let text = std::str::from_utf8(bytes).map_err(|_| anyhow!("not a wasmcached memory file"))?;
    if !text.starts_with(MAGIC_LINE) || text.as_bytes().get(MAGIC_LINE.len()) != Some(&b'\n') {
        bail!("not a wasmcached memory file");
    }
    let body_end = text
        .rfind("Kchecksum ")
        .ok_or_else(|| anyhow!("no checksum line (a truncated file)"))?;
    let (body, last) = text.split_at(body_end);
    let want = last
        .strip_prefix("Kchecksum ")
        .and_then(|l| l.strip_suffix('\n'))
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or_else(|| anyhow!("a bad checksum line"))?;
    if crc32fast::hash(body.as_bytes()) != want || !body.ends_with('\n') {
        bail!("its checksum does not match (a corrupted file)");
    }
    let mut meta = Meta {
        values: Vec::new(),
        shards: Vec::new(),
        images: Vec::new(),
    };
    for line in body.lines().skip(1) {
        let (k, v) = line
            .strip_prefix('K')
            .and_then(|l| l.split_once(' '))
            .ok_or_else(|| anyhow!("a bad line: {line:?}"))?;
        if k == "shard" {
            let f: Vec<&str> = v.split(' ').collect();
            let shard = match f.as_slice() {
                [id, items, bytes, crc] => ShardFile {
                    shard: id.parse()?,
                    items: items.parse()?,
                    bytes: bytes.parse()?,
                    crc: u32::from_str_radix(crc, 16)?,
                },
                _ => bail!("a bad shard line: {line:?}"),
            };
            meta.shards.push(shard);
        } else if k == "image" {
            let f: Vec<&str> = v.split(' ').collect();
            let image = match f.as_slice() {
                [id, bytes, crc] => ImageFile {
                    shard: id.parse()?,
                    bytes: bytes.parse()?,
                    crc: u32::from_str_radix(crc, 16)?,
                },
                _ => bail!("a bad image line: {line:?}"),
            };
            meta.images.push(image);
        } else {
            meta.values.push((k.to_string(), v.to_string()));
        }
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        let values = vec![
            ("maxbytes", "67108864".to_string()),
            ("plugin", "a b".into()),
        ];
        let shards = vec![ShardFile {
            shard: 0,
            items: 3,
            bytes: 100,
            crc: 0xdead_beef,
        }];
        let images = vec![ImageFile {
            shard: 0,
            bytes: 65568,
            crc: 0x0bad_cafe,
        }];
        format_meta(&values, &shards, &images)
    }

    #[test]
    fn the_memory_file_reads_back() {
        let m = parse_meta(sample().as_bytes()).unwrap();
        assert_eq!(m.get("maxbytes"), Some("67108864"));
        assert_eq!(m.get("plugin"), Some("a b"));
        assert_eq!(m.shards.len(), 1);
        assert_eq!(m.shards[0].crc, 0xdead_beef);
        assert_eq!(m.images.len(), 1);
        assert_eq!((m.images[0].bytes, m.images[0].crc), (65568, 0x0bad_cafe));
    }

    #[test]
    fn a_damaged_memory_file_is_refused() {
        let good = sample().into_bytes();
        for cut in 0..good.len() {
            assert!(parse_meta(&good[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x04;
            assert!(parse_meta(&bad).is_err(), "flipped byte {i}");
        }
        assert!(parse_meta(b"\0\0\0 memcached's own memory").is_err());
    }
}
