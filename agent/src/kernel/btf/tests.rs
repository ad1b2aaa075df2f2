//! Tests for the BTF parser: a handcrafted blob with exactly known offsets,
//! malformed inputs, and the running kernel's own BTF.

use super::*;

/// Builds a BTF blob by hand, one type record at a time.
struct Blob {
    words: Vec<u32>,
    strings: Vec<u8>,
    next_id: u32,
}

impl Blob {
    fn new() -> Self {
        Blob {
            words: Vec::new(),
            strings: vec![0],
            next_id: 1,
        }
    }

    fn str(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    /// Appends a type; returns its id.
    fn ty(
        &mut self,
        name: &str,
        kind: u32,
        kflag: bool,
        size_or_type: u32,
        vlen: u32,
        extra: &[u32],
    ) -> u32 {
        let name_off = self.str(name);
        let info = (u32::from(kflag) << 31) | (kind << 24) | vlen;
        self.words
            .extend_from_slice(&[name_off, info, size_or_type]);
        self.words.extend_from_slice(extra);
        self.next_id += 1;
        self.next_id - 1
    }

    /// Appends a struct/union whose members are `(name, type, raw offset)`.
    fn composite(
        &mut self,
        name: &str,
        kind: u32,
        kflag: bool,
        size: u32,
        members: &[(&str, u32, u32)],
    ) -> u32 {
        let mut extra = Vec::new();
        for &(m, t, off) in members {
            let n = self.str(m);
            extra.extend_from_slice(&[n, t, off]);
        }
        self.ty(name, kind, kflag, size, members.len() as u32, &extra)
    }

    fn bytes(&self, big_endian: bool) -> Vec<u8> {
        let enc = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let type_len = self.words.len() as u32 * 4;
        let mut out = Vec::new();
        out.extend_from_slice(&if big_endian {
            MAGIC.to_be_bytes()
        } else {
            MAGIC.to_le_bytes()
        });
        out.extend_from_slice(&[1, 0]);
        for v in [24, 0, type_len, type_len, self.strings.len() as u32] {
            out.extend_from_slice(&enc(v));
        }
        for &w in &self.words {
            out.extend_from_slice(&enc(w));
        }
        out.extend_from_slice(&self.strings);
        out
    }
}

/// A blob with one record of every kind ahead of the structs under test, so
/// that mis-sized trailing data for any kind shifts every later type id.
fn sample_blob() -> Blob {
    let mut b = Blob::new();
    let int = b.ty("int", INT, false, 4, 0, &[(1 << 24) | 32]);
    let uint = b.ty("unsigned int", INT, false, 4, 0, &[32]);
    let u64_ = b.ty("unsigned long long", INT, false, 8, 0, &[64]);
    b.ty("outer", FWD, false, 0, 0, &[]);
    b.composite("outer", STRUCT, false, 0, &[]);
    let (e1, e2) = (b.str("E_ONE"), b.str("E_TWO"));
    b.ty("e", ENUM, false, 4, 2, &[e1, 1, e2, 2]);
    let e3 = b.str("E_BIG");
    b.ty("e64", ENUM64, false, 8, 1, &[e3, 0, 1]);
    let (p1, p2) = (b.str("a"), b.str("b"));
    let proto = b.ty("", FUNC_PROTO, false, int, 2, &[p1, int, p2, uint]);
    b.ty("f", FUNC, false, proto, 0, &[]);
    let var = b.ty("v", VAR, false, int, 0, &[1]);
    b.ty(".data", DATASEC, false, 4, 1, &[var, 0, 4]);
    b.ty("tag", DECL_TAG, false, int, 0, &[u32::MAX]);
    b.ty("user", TYPE_TAG, false, int, 0, &[]);
    b.ty("double", FLOAT, false, 8, 0, &[]);
    let ids = b.ty("", ARRAY, false, 0, 0, &[u64_, int, 4]);
    let ptr = b.ty("", PTR, false, 0, 0, &[]);
    let inner = b.composite("inner", STRUCT, false, 8, &[("d", int, 0), ("c", int, 32)]);
    let typedef = b.ty("inner_t", TYPEDEF, false, inner, 0, &[]);
    let konst = b.ty("", CONST, false, typedef, 0, &[]);
    let anon_struct = b.composite("", STRUCT, false, 8, &[("pad", int, 0), ("deep", int, 32)]);
    let anon_union = b.composite(
        "",
        UNION,
        false,
        8,
        &[("a", int, 0), ("b", u64_, 0), ("", anon_struct, 0)],
    );
    let members = [
        ("x", int, 0),
        ("flags", uint, (3 << 24) | 32),
        ("mode", uint, (5 << 24) | 35),
        ("", anon_union, 64),
        ("nested", konst, 128),
        ("ids", ids, 192),
        ("p", ptr, 448),
    ];
    b.composite("outer", STRUCT, true, 64, &members);
    let lo = b.ty("", INT, false, 4, 0, &[3]);
    let hi = b.ty("", INT, false, 4, 0, &[(3 << 16) | 5]);
    b.composite("oldbits", STRUCT, false, 4, &[("lo", lo, 0), ("hi", hi, 0)]);
    b
}

fn check_sample(btf: &Btf) {
    assert_eq!(btf.type_count(), 25);
    assert_eq!(
        btf.struct_size("outer").unwrap(),
        64,
        "full definition must win over the empty one"
    );
    let off = |path: &str| btf.member_offset("outer", path).unwrap();
    assert_eq!(off("x"), Some(0));
    assert_eq!(off("a"), Some(8), "member of anonymous union");
    assert_eq!(off("b"), Some(8));
    assert_eq!(
        off("deep"),
        Some(12),
        "anonymous struct inside anonymous union"
    );
    assert_eq!(off("nested"), Some(16));
    assert_eq!(off("nested.d"), Some(16));
    assert_eq!(
        off("nested.c"),
        Some(20),
        "dotted path through const typedef"
    );
    assert_eq!(off("ids"), Some(24));
    assert_eq!(off("p"), Some(56));
    assert_eq!(off("missing"), None);
    assert_eq!(off("nested.missing"), None);

    let mode = btf.member("outer", "mode").unwrap().unwrap();
    assert_eq!(
        (mode.bit_offset, mode.bitfield_size, mode.byte_offset()),
        (35, 5, 4)
    );
    let flags = btf.member("outer", "flags").unwrap().unwrap();
    assert_eq!((flags.bit_offset, flags.bitfield_size), (32, 3));
    let hi = btf.member("oldbits", "hi").unwrap().unwrap();
    assert_eq!(
        (hi.bit_offset, hi.bitfield_size),
        (3, 5),
        "bitfield encoded in the INT type"
    );
    let lo = btf.member("oldbits", "lo").unwrap().unwrap();
    assert_eq!((lo.bit_offset, lo.bitfield_size), (0, 3));

    let shape = |path: &str| btf.member_shape("outer", path).unwrap().unwrap();
    assert_eq!(
        shape("b"),
        TypeShape::Int {
            bytes: 8,
            signed: false
        }
    );
    assert_eq!(
        shape("x"),
        TypeShape::Int {
            bytes: 4,
            signed: true
        }
    );
    assert!(shape("ids").is_u64_array());
    assert!(!shape("ids").is_pointer_array());
    assert_eq!(shape("ids").size(), Some(32));
    assert!(shape("p").is_pointer());
    assert_eq!(shape("nested"), TypeShape::Struct { bytes: 8 });

    assert!(
        matches!(btf.member_offset("nope", "x"), Err(BtfError::StructNotFound(s)) if s == "nope")
    );
    assert!(matches!(
        btf.member_offset("outer", "x.y"),
        Err(BtfError::NotAComposite { .. })
    ));
}

#[test]
fn handcrafted_blob_gives_exact_offsets() {
    check_sample(&Btf::from_bytes(&sample_blob().bytes(false)).unwrap());
}

#[test]
fn big_endian_blob_parses_the_same() {
    check_sample(&Btf::from_bytes(&sample_blob().bytes(true)).unwrap());
}

#[test]
fn malformed_input_gives_matching_errors() {
    assert!(matches!(
        Btf::from_bytes(&[]),
        Err(BtfError::Truncated { .. })
    ));
    assert!(matches!(
        Btf::from_bytes(&[0x9f, 0xeb, 1]),
        Err(BtfError::Truncated { .. })
    ));
    let garbage = b"this is certainly not BTF data, just text";
    assert!(matches!(
        Btf::from_bytes(garbage),
        Err(BtfError::BadMagic { found: 0x6874 })
    ));

    let good = sample_blob().bytes(false);
    let mut v2 = good.clone();
    v2[2] = 2;
    assert!(matches!(
        Btf::from_bytes(&v2),
        Err(BtfError::UnsupportedVersion(2))
    ));
    let cut = &good[..good.len() - 5];
    assert!(matches!(
        Btf::from_bytes(cut),
        Err(BtfError::Truncated {
            what: "string section",
            ..
        })
    ));

    // A struct claiming two members but carrying only one.
    let mut b = Blob::new();
    b.ty("s", STRUCT, false, 4, 2, &[0, 0, 0]);
    let err = Btf::from_bytes(&b.bytes(false)).unwrap_err();
    assert!(
        matches!(
            err,
            BtfError::Truncated {
                what: "type record",
                ..
            }
        ),
        "{err}"
    );

    let mut b = Blob::new();
    b.ty("int", INT, false, 4, 0, &[32]);
    b.ty("x", 25, false, 0, 0, &[]);
    assert!(matches!(
        Btf::from_bytes(&b.bytes(false)),
        Err(BtfError::UnknownKind { id: 2, kind: 25 })
    ));

    // A name offset pointing past the string section.
    let mut b = Blob::new();
    b.words.extend_from_slice(&[999, STRUCT << 24, 0]);
    assert!(matches!(
        Btf::from_bytes(&b.bytes(false)),
        Err(BtfError::BadString(999))
    ));

    // A typedef cycle is reported instead of looping.
    let mut b = Blob::new();
    let s = b.composite("s", STRUCT, false, 4, &[("m", 3, 0)]);
    b.ty("t1", TYPEDEF, false, 3, 0, &[]);
    b.ty("t2", TYPEDEF, false, 2, 0, &[]);
    assert_eq!(s, 1);
    let btf = Btf::from_bytes(&b.bytes(false)).unwrap();
    assert!(matches!(
        btf.member_shape("s", "m"),
        Err(BtfError::TooDeep(_))
    ));
}

#[test]
fn missing_file_is_read_failed() {
    let err = Btf::from_file("/nonexistent/btf/vmlinux").unwrap_err();
    assert!(matches!(err, BtfError::ReadFailed { .. }), "{err}");
}

fn vmlinux() -> Btf {
    let start = std::time::Instant::now();
    let btf = Btf::from_file(VMLINUX_BTF).expect("this machine exports BTF");
    eprintln!(
        "parsed {VMLINUX_BTF}: {} types in {:?}",
        btf.type_count(),
        start.elapsed()
    );
    btf
}

#[test]
fn vmlinux_task_struct_facts() {
    let btf = vmlinux();
    assert!(btf.type_count() > 10_000);
    let pid = btf.member_offset("task_struct", "pid").unwrap().unwrap();
    let tgid = btf.member_offset("task_struct", "tgid").unwrap().unwrap();
    assert_eq!(tgid, pid + 4, "pid_t pid; pid_t tgid; are adjacent");
    let int4 = TypeShape::Int {
        bytes: 4,
        signed: true,
    };
    assert_eq!(btf.member_shape("task_struct", "pid").unwrap(), Some(int4));
    let comm = btf.member_shape("task_struct", "comm").unwrap().unwrap();
    assert_eq!(comm.size(), Some(16), "TASK_COMM_LEN");
    for ptr in ["real_parent", "group_leader", "cgroups"] {
        assert!(
            btf.member_shape("task_struct", ptr)
                .unwrap()
                .unwrap()
                .is_pointer(),
            "{ptr}"
        );
    }
    assert_eq!(
        btf.member_shape("task_struct", "start_boottime")
            .unwrap()
            .unwrap()
            .size(),
        Some(8)
    );
    assert_eq!(
        btf.member_offset("task_struct", "no_such_member").unwrap(),
        None
    );
}

#[test]
fn vmlinux_sock_cgroup_and_tracepoint_structs() {
    let btf = vmlinux();
    assert_eq!(btf.member_offset("sock", "__sk_common").unwrap(), Some(0));
    let family = btf.member_offset("sock_common", "skc_family").unwrap();
    assert!(family.is_some());
    assert_eq!(
        btf.member_offset("sock", "__sk_common.skc_family").unwrap(),
        family
    );
    let kn_id = btf.member_shape("kernfs_node", "id").unwrap().unwrap();
    assert_eq!(
        kn_id,
        TypeShape::Int {
            bytes: 8,
            signed: false
        }
    );
    let ancestors = btf.member_shape("cgroup", "ancestors").unwrap();
    let ids = btf.member_shape("cgroup", "ancestor_ids").unwrap();
    match (ancestors, ids) {
        (Some(a), None) => assert!(a.is_pointer_array(), "{a:?}"),
        (None, Some(i)) => assert!(i.is_u64_array(), "{i:?}"),
        other => panic!("expected exactly one of ancestors/ancestor_ids: {other:?}"),
    }
    // The kernel's BTF also describes tracepoint records; these must match the
    // offsets tracefs reports for signal:signal_deliver on this machine.
    let tp = "trace_event_raw_signal_deliver";
    let expected = [
        ("sig", 8),
        ("errno", 12),
        ("code", 16),
        ("sa_handler", 24),
        ("sa_flags", 32),
    ];
    for (field, off) in expected {
        assert_eq!(btf.member_offset(tp, field).unwrap(), Some(off), "{field}");
    }
}
