//! Kernel BTF parser.
//!
//! The agent's eBPF programs are written in Rust and get no CO-RE relocations,
//! so the byte offsets they read kernel memory at are looked up here, once, in
//! the raw BTF blob the kernel exports at `/sys/kernel/btf/vmlinux`.
//!
//! Only what offset resolution needs is implemented: the header, the type
//! section (every kind is walked so its trailing data is skipped exactly) and
//! the string section. The type section is decoded into native-endian 32-bit
//! words once; struct and union names are indexed in a `HashMap`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tracing::debug;

/// Where the running kernel exports its own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const MIN_HEADER_LEN: usize = 24;
/// Guard against reference cycles in malformed data.
const MAX_DEPTH: u32 = 32;

// Type kinds, from the kernel's `include/uapi/linux/btf.h`.
const INT: u32 = 1;
const PTR: u32 = 2;
const ARRAY: u32 = 3;
const STRUCT: u32 = 4;
const UNION: u32 = 5;
const ENUM: u32 = 6;
const FWD: u32 = 7;
const TYPEDEF: u32 = 8;
const VOLATILE: u32 = 9;
const CONST: u32 = 10;
const RESTRICT: u32 = 11;
const FUNC: u32 = 12;
const FUNC_PROTO: u32 = 13;
const VAR: u32 = 14;
const DATASEC: u32 = 15;
const FLOAT: u32 = 16;
const DECL_TAG: u32 = 17;
const TYPE_TAG: u32 = 18;
const ENUM64: u32 = 19;

/// What went wrong while reading BTF or looking something up in it.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read BTF from {path}: {source}")]
    ReadFailed {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("BTF data truncated: {what} needs {needed} bytes at offset {at}, only {len} available")]
    Truncated {
        what: &'static str,
        at: usize,
        needed: usize,
        len: usize,
    },
    #[error("not BTF data: magic is {found:#06x}, expected 0xeb9f")]
    BadMagic { found: u16 },
    #[error("unsupported BTF version {0} (only version 1 is understood)")]
    UnsupportedVersion(u8),
    #[error("BTF type {id} has unknown kind {kind}")]
    UnknownKind { id: u32, kind: u32 },
    #[error("BTF string offset {0} is outside the string section or not valid UTF-8")]
    BadString(u32),
    #[error("BTF type id {0} does not exist")]
    BadTypeId(u32),
    #[error("no struct or union named `{0}` in BTF")]
    StructNotFound(String),
    #[error("in `{strukt}.{path}`, `{component}` is not a struct or union")]
    NotAComposite {
        strukt: String,
        path: String,
        component: String,
    },
    #[error("BTF types nest deeper than {MAX_DEPTH} levels at type {0} (reference cycle?)")]
    TooDeep(u32),
    #[error("bit offset of `{0}` overflows 32 bits")]
    OffsetOverflow(String),
}

/// One type record: its three header words and where its trailing data
/// starts in [`Btf::words`].
#[derive(Clone, Copy, Debug)]
struct TypeRec {
    name_off: u32,
    info: u32,
    size_or_type: u32,
    data: usize,
}

impl TypeRec {
    fn kind(&self) -> u32 {
        (self.info >> 24) & 0x1f
    }
    fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }
    fn kind_flag(&self) -> bool {
        self.info >> 31 == 1
    }
    fn is_composite(&self) -> bool {
        matches!(self.kind(), STRUCT | UNION)
    }
}

/// Parsed BTF: the decoded type section, the string section and a name index
/// of structs and unions.
pub struct Btf {
    words: Vec<u32>,
    strings: Vec<u8>,
    /// Index = type id; entry 0 stands for `void`.
    types: Vec<TypeRec>,
    composites: HashMap<Box<str>, u32>,
}

impl std::fmt::Debug for Btf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Btf")
            .field("types", &(self.types.len() - 1))
            .field("named_composites", &self.composites.len())
            .finish()
    }
}

fn read_bytes<const N: usize>(
    data: &[u8],
    at: usize,
    what: &'static str,
) -> Result<[u8; N], BtfError> {
    data.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(BtfError::Truncated {
            what,
            at,
            needed: N,
            len: data.len(),
        })
}

/// Bounds-checked `start..start+len` of `data`.
fn section<'a>(
    data: &'a [u8],
    start: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], BtfError> {
    start
        .checked_add(len)
        .and_then(|end| data.get(start..end))
        .ok_or(BtfError::Truncated {
            what,
            at: start,
            needed: len,
            len: data.len(),
        })
}

impl Btf {
    /// Reads and parses a BTF file such as [`VMLINUX_BTF`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Btf, BtfError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| BtfError::ReadFailed {
            path: path.to_owned(),
            source,
        })?;
        let btf = Btf::from_bytes(&bytes)?;
        debug!(path = %path.display(), ?btf, "parsed BTF");
        Ok(btf)
    }

    /// Parses raw BTF (either byte order).
    pub fn from_bytes(data: &[u8]) -> Result<Btf, BtfError> {
        let magic = read_bytes::<2>(data, 0, "header")?;
        let big_endian = match u16::from_le_bytes(magic) {
            MAGIC => false,
            m if m.swap_bytes() == MAGIC => true,
            found => return Err(BtfError::BadMagic { found }),
        };
        let rd32 = |at: usize| -> Result<u32, BtfError> {
            let b = read_bytes::<4>(data, at, "header")?;
            Ok(if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        let version = read_bytes::<1>(data, 2, "header")?[0];
        if version != 1 {
            return Err(BtfError::UnsupportedVersion(version));
        }
        let hdr_len = rd32(4)? as usize;
        section(data, 0, hdr_len.max(MIN_HEADER_LEN), "header")?;
        let (type_off, type_len) = (rd32(8)? as usize, rd32(12)? as usize);
        let (str_off, str_len) = (rd32(16)? as usize, rd32(20)? as usize);
        let type_sec = section(
            data,
            hdr_len.saturating_add(type_off),
            type_len,
            "type section",
        )?;
        let strings = section(
            data,
            hdr_len.saturating_add(str_off),
            str_len,
            "string section",
        )?;

        let words: Vec<u32> = type_sec
            .chunks_exact(4)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3]];
                if big_endian {
                    u32::from_be_bytes(b)
                } else {
                    u32::from_le_bytes(b)
                }
            })
            .collect();
        let types = Self::walk_types(&words)?;
        let mut btf = Btf {
            words,
            strings: strings.to_vec(),
            types,
            composites: HashMap::new(),
        };
        btf.index_composites()?;
        Ok(btf)
    }

    /// Splits the type section into records, skipping each kind's trailing data.
    fn walk_types(words: &[u32]) -> Result<Vec<TypeRec>, BtfError> {
        let void = TypeRec {
            name_off: 0,
            info: 0,
            size_or_type: 0,
            data: 0,
        };
        let mut types = vec![void];
        let mut pos = 0;
        while pos < words.len() {
            let id = types.len() as u32;
            let truncated = |needed_words: usize| BtfError::Truncated {
                what: "type record",
                at: pos * 4,
                needed: needed_words * 4,
                len: words.len() * 4,
            };
            let head = words.get(pos..pos + 3).ok_or_else(|| truncated(3))?;
            let rec = TypeRec {
                name_off: head[0],
                info: head[1],
                size_or_type: head[2],
                data: pos + 3,
            };
            let vlen = rec.vlen();
            let extra = match rec.kind() {
                PTR | FWD | TYPEDEF | VOLATILE | CONST | RESTRICT | FUNC | FLOAT | TYPE_TAG => 0,
                INT | VAR | DECL_TAG => 1,
                ARRAY => 3,
                STRUCT | UNION | DATASEC | ENUM64 => 3 * vlen,
                ENUM | FUNC_PROTO => 2 * vlen,
                kind => return Err(BtfError::UnknownKind { id, kind }),
            };
            if pos + 3 + extra > words.len() {
                return Err(truncated(3 + extra));
            }
            types.push(rec);
            pos += 3 + extra;
        }
        Ok(types)
    }

    /// Indexes named structs/unions; a definition with members wins over an
    /// empty one of the same name (forward declarations are a separate kind).
    fn index_composites(&mut self) -> Result<(), BtfError> {
        let mut index: HashMap<Box<str>, u32> = HashMap::with_capacity(self.types.len() / 8);
        for (id, t) in self.types.iter().enumerate().skip(1) {
            if !t.is_composite() || t.name_off == 0 {
                continue;
            }
            let name = self.name(t.name_off)?;
            match index.get_mut(name) {
                Some(old) if self.types[*old as usize].vlen() == 0 && t.vlen() > 0 => {
                    *old = id as u32
                }
                Some(_) => {}
                None => {
                    index.insert(name.into(), id as u32);
                }
            }
        }
        self.composites = index;
        Ok(())
    }

    /// Number of types, not counting `void`.
    pub fn type_count(&self) -> usize {
        self.types.len() - 1
    }

    fn name_bytes(&self, off: u32) -> Result<&[u8], BtfError> {
        let rest = self
            .strings
            .get(off as usize..)
            .ok_or(BtfError::BadString(off))?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(BtfError::BadString(off))?;
        Ok(&rest[..end])
    }

    fn name(&self, off: u32) -> Result<&str, BtfError> {
        std::str::from_utf8(self.name_bytes(off)?).map_err(|_| BtfError::BadString(off))
    }

    fn ty(&self, id: u32) -> Result<&TypeRec, BtfError> {
        self.types.get(id as usize).ok_or(BtfError::BadTypeId(id))
    }

    /// Trailing data word `i` of type `t` (in bounds: checked by the walk).
    fn word(&self, t: &TypeRec, i: usize) -> u32 {
        self.words.get(t.data + i).copied().unwrap_or(0)
    }
}

mod lookup;
pub use lookup::{MemberInfo, TypeShape};

#[cfg(test)]
mod tests;
