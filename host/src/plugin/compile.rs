//! Compiling plugin bytes, a .wasm module or .wat text, into a `Module`,
//! with a load error that names the format the file was meant to be in.

use anyhow::{anyhow, bail, Result};
use wasmtime::{Engine, Module};

pub(super) fn compile(engine: &Engine, bytes: &[u8], name: &str) -> Result<Module> {
    match Format::of(bytes) {
        Format::Wasm => {
            Module::new(engine, bytes).map_err(|e| anyhow!("{name}: not a valid Wasm module: {e}"))
        }
        Format::Wat => {
            Module::new(engine, bytes).map_err(|e| anyhow!("{name}: not valid WAT text: {e}"))
        }
        Format::Neither => bail!(
            "{name} is neither a Wasm module (it does not start with \\0asm) nor WAT text \
             (its first token is not `(`)"
        ),
    }
}

/// What a plugin file holds, judged from its first bytes, so that a load
/// error names the format the file was meant to be in.
#[derive(Debug, PartialEq, Eq)]
enum Format {
    Wasm,
    Wat,
    Neither,
}

impl Format {
    fn of(bytes: &[u8]) -> Format {
        if bytes.starts_with(b"\0asm") {
            return Format::Wasm;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Format::Neither;
        };
        // WAT starts with `(` after white space and comments (`;; …` to the
        // end of the line, `(; … ;)` blocks).
        let mut rest = text.trim_start_matches('\u{feff}');
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix(";;") {
                rest = r.split_once('\n').map_or("", |(_, after)| after);
            } else if let Some(r) = rest.strip_prefix("(;") {
                match r.split_once(";)") {
                    Some((_, after)) => rest = after,
                    // An unclosed block comment: the WAT parser says so.
                    None => return Format::Wat,
                }
            } else {
                return if rest.starts_with('(') {
                    Format::Wat
                } else {
                    Format::Neither
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::Plugin;

    #[test]
    fn a_file_that_is_neither_wasm_nor_wat_says_so() {
        assert_eq!(Format::of(b"\0asm\x01\0\0\0"), Format::Wasm);
        assert_eq!(Format::of(b"(module)"), Format::Wat);
        assert_eq!(
            Format::of(b"\xef\xbb\xbf  ;; a store\n(; v1 ;)\n(module)"),
            Format::Wat
        );
        assert_eq!(Format::of(b"(; never closed"), Format::Wat);
        for junk in [
            &b""[..],
            b"hello",
            b"\x7fELF\x02\x01",
            b";; only a comment",
            b"\xff\xfe(",
        ] {
            assert_eq!(Format::of(junk), Format::Neither, "{junk:?}");
        }
        let err = format!(
            "{:#}",
            Plugin::new(b"#!/bin/sh\necho hi\n", "x.sh").err().unwrap()
        );
        assert_eq!(
            err,
            "x.sh is neither a Wasm module (it does not start with \\0asm) nor WAT text \
             (its first token is not `(`)"
        );
        let err = format!(
            "{:#}",
            Plugin::new(b"(module (func (bogus)))", "y.wat")
                .err()
                .unwrap()
        );
        assert!(err.starts_with("y.wat: not valid WAT text: "), "{err}");
        let err = format!(
            "{:#}",
            Plugin::new(b"\0asm\x0f\0\0\0", "z.wasm").err().unwrap()
        );
        assert!(
            err.starts_with("z.wasm: not a valid Wasm module: "),
            "{err}"
        );
    }
}
