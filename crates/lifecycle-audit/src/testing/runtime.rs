//! Container runtimes as the probes see them start processes in a
//! container's cgroup, for [`Script`]: runc's bootstrap stages (as recorded
//! here with runc 1.1.5, alone and under containerd 1.6) and crun's extra
//! fork.

use lifecycle_recording::{
    cgroup::CgroupClass,
    event::{CgroupChange, CgroupOp, Event, Process, ProcessFork},
};

use super::{By, Proc, Script};

/// Script time between two steps of a runtime's setup.
const STEP_NS: i64 = 1_000_000;

impl Script {
    /// runc starts a new run of `container`: `runc create` moves its
    /// bootstrap `runc:[0:PARENT]` into the new cgroup, which forks
    /// `runc:[1:CHILD]`, which forks `runc:[2:INIT]`; the first two exit 0.
    /// Takes 4 ms of script time. Returns `[2:INIT]`, which still has to
    /// exec the entrypoint ([`Script::runc_init_execs`]).
    pub fn runc_create(&mut self, container: &str) -> Proc {
        self.new_run(container);
        let runc = self.host_process("runc");
        let parent = self.new_process(container, "runc:[0:PARENT]", 2);
        self.attach(runc, &parent);
        self.runc_stages(parent)
    }

    /// `runc exec` into the running `container` as runc 1.1.5 does it: only
    /// `runc:[2:INIT]` is moved into the cgroup, after the other two stages
    /// left, and its Go runtime signals itself (SIGURG) before the exec.
    /// Takes 1 ms. Returns `[2:INIT]`, which still has to exec the hook's
    /// program ([`Script::runc_init_execs`]).
    pub fn runc_exec(&mut self, container: &str) -> Proc {
        let runc = self.host_process("runc");
        let init = self.new_process(container, "runc:[2:INIT]", 3);
        self.attach(runc, &init);
        self.now_ns += STEP_NS;
        let init = Proc::of(init);
        self.signal(By::Proc(&init), &init, 23, "handler");
        init
    }

    /// `runc exec` as runc 1.5 does it with `CLONE_INTO_CGROUP`: `runc
    /// init` is born in the container's cgroup, exec'd there, and runs all
    /// three stages in it. Takes 4 ms. Returns `[2:INIT]`.
    pub fn runc_exec_in_cgroup(&mut self, container: &str) -> Proc {
        let runc = self.host_process("runc");
        let born = Proc::of(self.new_process(container, "runc", 1));
        let mut parent = self.exec_as(&born, "/usr/bin/runc", runc.pid).process;
        parent.comm = "runc:[0:PARENT]".into();
        self.runc_stages(parent)
    }

    /// `init`, a `runc:[2:INIT]`, execs `filename`. runc clones its stages
    /// with `CLONE_PARENT`, so the exec's parent is outside the container
    /// (the shim that reaped the bootstrap, or `runc exec`).
    pub fn runc_init_execs(&mut self, init: &Proc, filename: &str) -> Proc {
        let shim = self.host_process("containerd-shim");
        self.exec_as(init, filename, shim.pid)
    }

    /// crun starts a new run of `container` that has to join an existing
    /// pid namespace: its clone of crun (same comm), born in the cgroup,
    /// forks the future PID 1 and exits 0. Takes 2 ms. Returns the second
    /// process, which still has to exec the entrypoint
    /// ([`Script::crun_child_execs`]).
    pub fn crun_create_forking(&mut self, container: &str) -> Proc {
        self.new_run(container);
        let clone = self.new_process(container, "crun", 1);
        let child = self.fork_as(&clone, "crun");
        self.now_ns += STEP_NS;
        self.exit(&Proc::of(clone), 0);
        self.now_ns += STEP_NS;
        child
    }

    /// `child` (from [`Script::crun_create_forking`]) execs the entrypoint;
    /// its parent has exited, so its parent is the shim by then.
    pub fn crun_child_execs(&mut self, child: &Proc, filename: &str) -> Proc {
        let shim = self.host_process("containerd-shim");
        self.exec_as(child, filename, shim.pid)
    }

    /// A process of `container` with a new pid, started `ms_ago`.
    fn new_process(&mut self, container: &str, comm: &str, ms_ago: u64) -> Process {
        self.next_pid += 1;
        let start = self.now_ns as u64 - ms_ago * STEP_NS as u64;
        self.container_process(container, comm, start)
    }

    /// `[0:PARENT]` forks `[1:CHILD]`, which forks `[2:INIT]`; the first
    /// two exit 0. Takes 4 ms. Returns `[2:INIT]`.
    fn runc_stages(&mut self, parent: Process) -> Proc {
        self.now_ns += STEP_NS;
        let child = self.fork_as(&parent, "runc:[1:CHILD]");
        self.now_ns += STEP_NS;
        let init = self.fork_as(&child.process, "runc:[2:INIT]");
        self.now_ns += STEP_NS;
        self.exit(&child, 0);
        self.now_ns += STEP_NS;
        self.exit(&Proc::of(parent), 0);
        init
    }

    /// `actor` moves `moved` into its container's cgroup.
    fn attach(&mut self, actor: Process, moved: &Process) {
        let Some(CgroupClass::Container(c)) = moved.cgroup.clone() else {
            panic!("a container process");
        };
        let path = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{}.scope",
            c.pod_uid.replace('-', "_"),
            c.container_id
        );
        self.push(
            Event::Cgroup(CgroupChange {
                op: CgroupOp::Attach,
                cgroup_id: moved.cgroup_id,
                level: 4,
                path,
                path_truncated: false,
                class: CgroupClass::Container(c),
                actor,
                moved_pid: Some(moved.pid),
            }),
            true,
        );
    }

    /// `parent` forks a child, which then names itself `comm` (the fork
    /// record shows the name it inherited).
    fn fork_as(&mut self, parent: &Process, comm: &str) -> Proc {
        self.next_pid += 1;
        let mut child = parent.clone();
        child.pid = self.next_pid;
        child.tid = self.next_pid;
        child.start_ns = self.now_ns as u64;
        self.push(
            Event::ProcessFork(ProcessFork {
                parent: parent.clone(),
                child: child.clone(),
            }),
            true,
        );
        child.comm = comm.into();
        Proc::of(child)
    }

    /// `p` execs `filename`: same pid and start, the program's name.
    fn exec_as(&mut self, p: &Proc, filename: &str, parent_pid: u32) -> Proc {
        let mut process = p.process.clone();
        let name = filename.rsplit('/').next().unwrap_or(filename);
        process.comm = name.chars().take(15).collect();
        self.push_exec(process, filename, parent_pid)
    }
}

impl Proc {
    pub(super) fn of(process: Process) -> Self {
        Self {
            pid: process.pid,
            start_ns: process.start_ns,
            process,
        }
    }
}
