#!/usr/bin/env python3
"""Writes the BTF seeds of fuzz/corpus/btf/: small hand-built blobs.

The kernel's own /sys/kernel/btf/vmlinux is megabytes, too big to commit,
so these blobs hold just the structs and members the agent looks up
(agent/src/kernel/offsets.rs), with member types reduced to integers,
pointers and arrays, plus one record of every BTF kind. Run it from the
repository root; the output is deterministic.
"""
import struct
import sys
from pathlib import Path

INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST = range(1, 11)
RESTRICT, FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(11, 20)


class Blob:
    def __init__(self):
        self.words, self.strings, self.next_id = [], b"\0", 1

    def str(self, s):
        if not s:
            return 0
        off = len(self.strings)
        self.strings += s.encode() + b"\0"
        return off

    def ty(self, name, kind, size_or_type=0, vlen=0, extra=(), kflag=False):
        info = (int(kflag) << 31) | (kind << 24) | vlen
        self.words += [self.str(name), info, size_or_type, *extra]
        self.next_id += 1
        return self.next_id - 1

    def composite(self, name, size, members, kind=STRUCT, kflag=False):
        extra = []
        for m, t, off in members:
            extra += [self.str(m), t, off]
        return self.ty(name, kind, size, len(members), extra, kflag)

    def bytes(self, big_endian=False):
        e = ">" if big_endian else "<"
        types = struct.pack(f"{e}{len(self.words)}I", *self.words)
        header = struct.pack(f"{e}HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(self.strings))
        return header + types + self.strings


def agent_structs():
    b = Blob()
    i32 = b.ty("int", INT, 4, extra=[(1 << 24) | 32])
    u32 = b.ty("unsigned int", INT, 4, extra=[32])
    u64 = b.ty("u64", INT, 8, extra=[64])
    char = b.ty("char", INT, 1, extra=[(1 << 24) | 8])
    ptr = b.ty("", PTR, 0)
    comm = b.ty("", ARRAY, 0, extra=[char, i32, 16])
    ptrs = b.ty("", ARRAY, 0, extra=[ptr, i32, 0])
    pid_t = b.ty("pid_t", TYPEDEF, i32)
    b.ty("task_struct", FWD)
    b.composite("task_struct", 3000, [
        ("exit_code", i32, 8 * 1400), ("pid", pid_t, 8 * 1500), ("tgid", pid_t, 8 * 1504),
        ("real_parent", ptr, 8 * 1512), ("group_leader", ptr, 8 * 1528),
        ("start_boottime", u64, 8 * 1600), ("comm", comm, 8 * 1664), ("signal", ptr, 8 * 1800),
        ("sighand", ptr, 8 * 1808), ("cgroups", ptr, 8 * 2200)])
    b.composite("css_set", 256, [("dfl_cgrp", ptr, 8 * 136)])
    b.composite("kernfs_node", 128, [("id", u64, 8 * 96)])
    b.composite("cgroup", 1024, [("level", i32, 8 * 208), ("kn", ptr, 8 * 256), ("ancestors", ptrs, 8 * 1016)])
    cgrp_data = b.composite("sock_cgroup_data", 8, [("cgroup", ptr, 0)])
    b.composite("sock", 800, [("sk_err", i32, 8 * 332), ("sk_uid", u32, 8 * 336),
                              ("sk_cgrp_data", cgrp_data, 8 * 640)])
    handler = b.ty("__sighandler_t", TYPEDEF, ptr)
    sigaction = b.composite("sigaction", 24, [("sa_handler", handler, 0), ("sa_flags", u64, 64)])
    b.composite("k_sigaction", 24, [("sa", sigaction, 0)])
    actions = b.ty("", ARRAY, 0, extra=[b.next_id - 1, i32, 64])
    b.composite("sighand_struct", 1560, [("action", actions, 8 * 24)])
    b.composite("signal_struct", 1100, [("flags", u32, 8 * 76)])
    return b


def every_kind():
    b = Blob()
    i32 = b.ty("int", INT, 4, extra=[(1 << 24) | 32])
    b.ty("e", ENUM, 4, 2, [b.str("E_ONE"), 1, b.str("E_TWO"), 2])
    b.ty("e64", ENUM64, 8, 1, [b.str("E_BIG"), 0, 1])
    proto = b.ty("", FUNC_PROTO, i32, 1, [b.str("a"), i32])
    b.ty("f", FUNC, proto)
    var = b.ty("v", VAR, i32, extra=[1])
    b.ty(".data", DATASEC, 4, 1, [var, 0, 4])
    b.ty("tag", DECL_TAG, i32, extra=[0xFFFFFFFF])
    b.ty("user", TYPE_TAG, i32)
    b.ty("double", FLOAT, 8)
    v = b.ty("", VOLATILE, i32)
    r = b.ty("", RESTRICT, v)
    c = b.ty("", CONST, r)
    inner = b.composite("", 8, [("d", c, 0), ("c", i32, 32)])
    u = b.composite("u", 8, [("", inner, 0), ("w", i32, (3 << 24) | 5)], kind=UNION, kflag=True)
    b.composite("task_struct", 8, [("pid", u, 0)])
    return b


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/btf")
    out.mkdir(parents=True, exist_ok=True)
    (out / "agent-structs-le.btf").write_bytes(agent_structs().bytes())
    (out / "agent-structs-be.btf").write_bytes(agent_structs().bytes(big_endian=True))
    (out / "every-kind.btf").write_bytes(every_kind().bytes())
    good = agent_structs().bytes()
    (out / "bad-truncated.btf").write_bytes(good[: len(good) // 2])
    (out / "bad-magic.btf").write_bytes(b"\x9f\xec" + good[2:64])
    bad_kind = bytearray(every_kind().bytes())
    bad_kind[24 + 7] = 31  # first type's kind byte (little endian info word)
    (out / "bad-unknown-kind.btf").write_bytes(bytes(bad_kind))


if __name__ == "__main__":
    main()
