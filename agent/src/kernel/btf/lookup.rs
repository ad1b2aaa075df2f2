//! Member and type lookups on a parsed [`Btf`]: anonymous struct/union
//! descent, dotted paths, bitfields, and type shapes.

use super::{
    ARRAY, Btf, BtfError, CONST, ENUM, ENUM64, FLOAT, INT, MAX_DEPTH, PTR, RESTRICT, STRUCT,
    TYPE_TAG, TYPEDEF, UNION, VOLATILE,
};

/// A struct/union member as found by [`Btf::member`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// Offset in bits from the start of the outermost struct.
    pub bit_offset: u32,
    /// Width of a bitfield member; 0 for ordinary members.
    pub bitfield_size: u32,
    /// BTF id of the member's declared type.
    pub type_id: u32,
}

impl MemberInfo {
    /// Offset in bytes (of the byte holding the first bit, for bitfields).
    pub fn byte_offset(&self) -> u32 {
        self.bit_offset / 8
    }
}

/// The shape of a type after typedefs and qualifiers are peeled off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeShape {
    Void,
    Int {
        bytes: u32,
        signed: bool,
    },
    Pointer,
    Array {
        elem: Box<TypeShape>,
        len: u32,
    },
    Struct {
        bytes: u32,
    },
    Union {
        bytes: u32,
    },
    Enum {
        bytes: u32,
    },
    Float {
        bytes: u32,
    },
    /// Functions, forward declarations and other kinds without a layout.
    Other,
}

impl TypeShape {
    /// Size in bytes, when the type has one (pointers use the host's width).
    pub fn size(&self) -> Option<u32> {
        match self {
            TypeShape::Int { bytes, .. }
            | TypeShape::Struct { bytes }
            | TypeShape::Union { bytes }
            | TypeShape::Enum { bytes }
            | TypeShape::Float { bytes } => Some(*bytes),
            TypeShape::Pointer => Some(std::mem::size_of::<usize>() as u32),
            TypeShape::Array { elem, len } => elem.size()?.checked_mul(*len),
            TypeShape::Void | TypeShape::Other => None,
        }
    }

    pub fn is_pointer(&self) -> bool {
        matches!(self, TypeShape::Pointer)
    }

    /// An array (possibly flexible, length 0) of pointers.
    pub fn is_pointer_array(&self) -> bool {
        matches!(self, TypeShape::Array { elem, .. } if elem.is_pointer())
    }

    /// An array (possibly flexible, length 0) of unsigned 64-bit integers.
    pub fn is_u64_array(&self) -> bool {
        matches!(self, TypeShape::Array { elem, .. }
            if **elem == TypeShape::Int { bytes: 8, signed: false })
    }
}
impl Btf {
    /// Follows typedefs and qualifiers to the underlying type id.
    pub fn resolve(&self, mut id: u32) -> Result<u32, BtfError> {
        for _ in 0..MAX_DEPTH {
            match self.ty(id)?.kind() {
                TYPEDEF | VOLATILE | CONST | RESTRICT | TYPE_TAG => id = self.ty(id)?.size_or_type,
                _ => return Ok(id),
            }
        }
        Err(BtfError::TooDeep(id))
    }

    /// Id of the named struct or union, preferring a definition with members.
    pub fn struct_id(&self, name: &str) -> Result<u32, BtfError> {
        self.composites
            .get(name)
            .copied()
            .ok_or_else(|| BtfError::StructNotFound(name.to_owned()))
    }

    /// Size in bytes of the named struct or union.
    pub fn struct_size(&self, name: &str) -> Result<u32, BtfError> {
        Ok(self.ty(self.struct_id(name)?)?.size_or_type)
    }

    /// Byte offset of `path` (a member name, or `a.b.c` through named nested
    /// structs) inside struct `strukt`; `Ok(None)` when there is no such member.
    pub fn member_offset(&self, strukt: &str, path: &str) -> Result<Option<u32>, BtfError> {
        Ok(self.member(strukt, path)?.map(|m| m.byte_offset()))
    }

    /// Shape of the member at `path` inside `strukt`, if it exists.
    pub fn member_shape(&self, strukt: &str, path: &str) -> Result<Option<TypeShape>, BtfError> {
        self.member(strukt, path)?
            .map(|m| self.shape(m.type_id))
            .transpose()
    }

    /// Finds the member at `path` inside `strukt`. Members of anonymous
    /// structs/unions are found as if they were direct members, and every
    /// enclosing offset is added in.
    pub fn member(&self, strukt: &str, path: &str) -> Result<Option<MemberInfo>, BtfError> {
        let mut container = self.struct_id(strukt)?;
        let mut found: Option<MemberInfo> = None;
        for component in path.split('.') {
            if let Some(prev) = found {
                container = self.resolve(prev.type_id)?;
                if !self.ty(container)?.is_composite() {
                    return Err(BtfError::NotAComposite {
                        strukt: strukt.to_owned(),
                        path: path.to_owned(),
                        component: component.to_owned(),
                    });
                }
            }
            let Some(m) = self.find_member(container, component.as_bytes(), 0)? else {
                return Ok(None);
            };
            let base = found.map_or(0, |f| f.bit_offset);
            let bit_offset = base
                .checked_add(m.bit_offset)
                .ok_or_else(|| BtfError::OffsetOverflow(path.to_owned()))?;
            found = Some(MemberInfo { bit_offset, ..m });
        }
        Ok(found)
    }

    /// Depth-first search of `container` (a struct or union id) for `name`.
    fn find_member(
        &self,
        container: u32,
        name: &[u8],
        depth: u32,
    ) -> Result<Option<MemberInfo>, BtfError> {
        if depth >= MAX_DEPTH {
            return Err(BtfError::TooDeep(container));
        }
        let t = *self.ty(container)?;
        for i in 0..t.vlen() {
            let (name_off, type_id, raw) = (
                self.word(&t, 3 * i),
                self.word(&t, 3 * i + 1),
                self.word(&t, 3 * i + 2),
            );
            let (bits, bitfield) = if t.kind_flag() {
                (raw & 0x00ff_ffff, raw >> 24)
            } else {
                (raw, 0)
            };
            if name_off != 0 {
                if self.name_bytes(name_off)? == name {
                    return self.member_at(bits, bitfield, type_id).map(Some);
                }
                continue;
            }
            let inner = self.resolve(type_id)?;
            if self.ty(inner)?.is_composite()
                && let Some(m) = self.find_member(inner, name, depth + 1)?
            {
                let bit_offset = m.bit_offset.checked_add(bits).ok_or_else(|| {
                    BtfError::OffsetOverflow(String::from_utf8_lossy(name).into_owned())
                })?;
                return Ok(Some(MemberInfo { bit_offset, ..m }));
            }
        }
        Ok(None)
    }

    /// Builds a [`MemberInfo`], decoding old-style bitfields (no kind_flag)
    /// whose width and extra offset live in the INT type's encoding word.
    fn member_at(&self, bits: u32, bitfield: u32, type_id: u32) -> Result<MemberInfo, BtfError> {
        let mut info = MemberInfo {
            bit_offset: bits,
            bitfield_size: bitfield,
            type_id,
        };
        let resolved = *self.ty(self.resolve(type_id)?)?;
        if bitfield == 0 && resolved.kind() == INT {
            let enc = self.word(&resolved, 0);
            let (int_off, nr_bits) = ((enc >> 16) & 0xff, enc & 0xff);
            if int_off != 0 || nr_bits != resolved.size_or_type.saturating_mul(8) {
                info.bit_offset = bits.saturating_add(int_off);
                info.bitfield_size = nr_bits;
            }
        }
        Ok(info)
    }

    /// Describes type `id` after typedefs and qualifiers.
    pub fn shape(&self, id: u32) -> Result<TypeShape, BtfError> {
        self.shape_at(id, 0)
    }

    fn shape_at(&self, id: u32, depth: u32) -> Result<TypeShape, BtfError> {
        if depth >= MAX_DEPTH {
            return Err(BtfError::TooDeep(id));
        }
        let id = self.resolve(id)?;
        let t = *self.ty(id)?;
        let bytes = t.size_or_type;
        Ok(match t.kind() {
            _ if id == 0 => TypeShape::Void,
            INT => TypeShape::Int {
                bytes,
                signed: (self.word(&t, 0) >> 24) & 1 == 1,
            },
            PTR => TypeShape::Pointer,
            ARRAY => TypeShape::Array {
                elem: Box::new(self.shape_at(self.word(&t, 0), depth + 1)?),
                len: self.word(&t, 2),
            },
            STRUCT => TypeShape::Struct { bytes },
            UNION => TypeShape::Union { bytes },
            ENUM | ENUM64 => TypeShape::Enum { bytes },
            FLOAT => TypeShape::Float { bytes },
            _ => TypeShape::Other,
        })
    }
}
