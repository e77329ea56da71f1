//! Whether a plugin keeps all of its state in its linear memory, so that a
//! memory image (host/src/plugin/image.rs) restores an instance whole. Two
//! more things belong to an instance, and a module passes only when neither
//! can have moved since instantiation:
//! - mutable globals: a module may define one, the shadow stack pointer
//!   that LLVM emits (`__stack_pointer`), which is back at its first value
//!   whenever no call is running; any other mutable global (an
//!   AssemblyScript runtime keeps its heap in globals) fails the check;
//! - tables and segments: no `table.set`, `table.grow`, `table.fill`,
//!   `table.copy`, `table.init`, `elem.drop` or `data.drop`, so a fresh
//!   instance's tables and segments are the saved one's.

use wasmparser::{KnownCustom, Name, Operator, Parser, Payload, TypeRef, ValType};

/// Whether a module's whole state is its linear memory, so that a memory
/// image restores it. `Err` says why not (the warm restart then uses the
/// item records alone).
pub(super) fn memory_image_safe(wasm: &[u8]) -> Result<(), String> {
    let text;
    let wasm = if wasm.starts_with(b"\0asm") {
        wasm
    } else {
        text = wat::parse_bytes(wasm).map_err(|e| e.to_string())?;
        &text[..]
    };
    let mut mutable = Vec::new();
    let mut named_stack_pointer = None;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| e.to_string())? {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    match import.map_err(|e| e.to_string())?.ty {
                        TypeRef::Global(_) => return Err("it imports a global".into()),
                        TypeRef::Memory(_) => return Err("it imports its memory".into()),
                        _ => {}
                    }
                }
            }
            Payload::GlobalSection(globals) => {
                for (index, global) in globals.into_iter().enumerate() {
                    let ty = global.map_err(|e| e.to_string())?.ty;
                    if ty.mutable {
                        mutable.push((index as u32, ty.content_type));
                    }
                }
            }
            Payload::CustomSection(custom) => {
                if let KnownCustom::Name(names) = custom.as_known() {
                    for name in names {
                        if let Ok(Name::Global(map)) = name {
                            for naming in map.into_iter().flatten() {
                                if naming.name == "__stack_pointer" {
                                    named_stack_pointer = Some(naming.index);
                                }
                            }
                        }
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut ops = body.get_operators_reader().map_err(|e| e.to_string())?;
                while !ops.eof() {
                    let op = ops.read().map_err(|e| e.to_string())?;
                    if let Some(name) = instance_state_op(&op) {
                        return Err(format!("it uses `{name}`"));
                    }
                }
            }
            _ => {}
        }
    }
    match mutable.as_slice() {
        [] => Ok(()),
        [(index, ValType::I32)] if named_stack_pointer == Some(*index) => Ok(()),
        [(index, _)] if named_stack_pointer != Some(*index) => Err(format!(
            "its mutable global {index} is not the stack pointer (`__stack_pointer`)"
        )),
        more => Err(format!("it has {} mutable globals", more.len())),
    }
}

/// The instructions that change an instance's state outside its memory.
fn instance_state_op(op: &Operator) -> Option<&'static str> {
    Some(match op {
        Operator::TableSet { .. } => "table.set",
        Operator::TableGrow { .. } => "table.grow",
        Operator::TableFill { .. } => "table.fill",
        Operator::TableCopy { .. } => "table.copy",
        Operator::TableInit { .. } => "table.init",
        Operator::ElemDrop { .. } => "elem.drop",
        Operator::DataDrop { .. } => "data.drop",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_modules_whose_state_is_their_memory_are_image_safe() {
        assert_eq!(memory_image_safe(super::super::DEFAULT_PLUGIN), Ok(()));
        let module = |body: &str| {
            format!(
                r#"(module (memory (export "memory") 1) (table 2 funcref)
                   (global $__stack_pointer (mut i32) (i32.const 1024))
                   {body})"#
            )
        };
        assert_eq!(memory_image_safe(module("").as_bytes()), Ok(()));
        let counter = module("(global $count (mut i32) (i32.const 0))");
        assert_eq!(
            memory_image_safe(counter.as_bytes()),
            Err("it has 2 mutable globals".into())
        );
        let renamed = r#"(module (memory 1) (global $hits (mut i64) (i64.const 0)))"#;
        assert!(memory_image_safe(renamed.as_bytes())
            .unwrap_err()
            .contains("is not the stack pointer"));
        let grows = module("(func (drop (table.grow (ref.null func) (i32.const 1))))");
        assert_eq!(
            memory_image_safe(grows.as_bytes()),
            Err("it uses `table.grow`".into())
        );
        let drops = module(r#"(data $d "x") (func (data.drop $d))"#);
        assert_eq!(
            memory_image_safe(drops.as_bytes()),
            Err("it uses `data.drop`".into())
        );
    }
}
