//! tracefs, the tracepoints the programs attach to, their record layouts,
//! and the kernel struct members read through BTF.

use crate::kernel::{
    btf::Btf,
    loader::{Hook, PROGRAMS},
    offsets,
    tracefs::{self, Tracefs, TracefsError},
};

use super::{Check, PreflightOptions};

/// Finds (or, when allowed, mounts) tracefs like the loader does. The
/// third value tells whether the agent will have to mount it itself.
pub(super) fn check_tracefs(opts: &PreflightOptions) -> (Check, Option<Tracefs>, bool) {
    const NAME: &str = "tracefs";
    if let Some(path) = &opts.tracefs_path {
        let found = Tracefs::at(path);
        if found.root().join("events").is_dir() {
            let detail = format!("{} (given) has events/", path.display());
            return (Check::ok(NAME, detail), Some(found), false);
        }
        let check = Check::fail(
            NAME,
            format!("{} has no events/ directory: not a tracefs", path.display()),
            "pass the tracefs mount point (usually /sys/kernel/tracing) or leave --tracefs-path \
             unset",
        )
        .with_label("tracefs_unavailable");
        return (check, None, false);
    }
    if let Some(found) = Tracefs::locate() {
        let detail = format!("mounted at {}", found.root().display());
        return (Check::ok(NAME, detail), Some(found), false);
    }
    if !opts.mount_tracefs {
        let check = Check::fail(
            NAME,
            format!(
                "tracefs is not mounted (looked in {}) and mounting is turned off \
                 (--no-mount-tracefs)",
                tracefs::CANDIDATES.join(", ")
            ),
            "mount it on the host (`mount -t tracefs tracefs /sys/kernel/tracing`; systemd does \
             this at boot) and give the pod a hostPath of /sys/kernel/tracing, or allow the agent \
             to mount it (needs CAP_SYS_ADMIN)",
        )
        .with_label("tracefs_unavailable");
        return (check, None, false);
    }
    match tracefs::ensure_tracefs(true) {
        Ok(mounted) => {
            let detail = format!(
                "was not mounted; mounted it at {} (the agent does the same at start)",
                mounted.root().display()
            );
            (Check::ok(NAME, detail), Some(mounted), true)
        }
        Err(e) => {
            let check = Check::failed_step(
                NAME,
                e,
                "mount tracefs on the host and give the pod a hostPath of /sys/kernel/tracing, \
                 or grant CAP_SYS_ADMIN so the agent can mount it",
            );
            (check, None, true)
        }
    }
}

/// Every hook of [`PROGRAMS`] exists, and every tracepoint field the
/// programs load sits where they load it.
pub(super) fn check_tracepoints(tracefs: Option<&Tracefs>) -> Check {
    const NAME: &str = "tracepoints";
    let Some(tracefs) = tracefs else {
        return Check::fail(
            NAME,
            "not checked: no tracefs",
            "fix the tracefs check first",
        )
        .with_label("tracefs_unavailable");
    };
    let mut missing = Vec::new();
    for (_, hook) in PROGRAMS {
        let present = match *hook {
            Hook::Tracepoint(category, event) => match tracefs.field_offsets(category, event) {
                Ok(_) => true,
                Err(TracefsError::EventNotFound { .. }) => false,
                Err(e) => {
                    return Check::failed_step(
                        NAME,
                        e,
                        "check that tracefs is readable by the agent",
                    );
                }
            },
            Hook::Raw(event) => raw_tracepoint_listed(tracefs, event),
        };
        if !present {
            missing.push(hook_name(hook));
        }
    }
    if !missing.is_empty() {
        return Check::fail(
            NAME,
            format!("missing on this kernel: {}", missing.join(", ")),
            "the kernel must have these tracepoints (CONFIG_TRACEPOINTS, CONFIG_FTRACE); use a \
             distribution kernel",
        )
        .with_label("attach_failed");
    }
    match offsets::check_tracepoint_layouts(tracefs) {
        Ok(report) => {
            let mut detail = format!(
                "{} hooks present; {} record fields at the offsets the probes load",
                PROGRAMS.len(),
                agent_common::config::TRACEPOINT_FIELDS.len() - report.absent.len()
            );
            if report.absent.is_empty() {
                return Check::ok(NAME, detail);
            }
            detail.push_str("; ");
            detail.push_str(&report.notes.join("; "));
            Check::warn(
                NAME,
                detail,
                "the agent runs with the reduced detail named above",
            )
        }
        Err(e) => Check::failed_step(
            NAME,
            e,
            "this kernel lays out a tracepoint record differently from what the probes were \
             built for: an agent build for it is needed (report the field named above)",
        ),
    }
}

/// Raw tracepoints attach by name without tracefs; the event directory
/// confirms the kernel has them.
fn raw_tracepoint_listed(tracefs: &Tracefs, event: &str) -> bool {
    let Ok(categories) = std::fs::read_dir(tracefs.root().join("events")) else {
        return false;
    };
    categories
        .flatten()
        .any(|category| category.path().join(event).is_dir())
}

fn hook_name(hook: &Hook) -> String {
    match hook {
        Hook::Tracepoint(category, event) => format!("{category}:{event}"),
        Hook::Raw(event) => format!("raw:{event}"),
    }
}

/// The kernel struct members the programs read, from BTF.
pub(super) fn check_offsets(btf: Option<&Btf>) -> Check {
    const NAME: &str = "kernel_offsets";
    let Some(btf) = btf else {
        return Check::fail(NAME, "not checked: no BTF", "fix the btf check first")
            .with_label("btf_unavailable");
    };
    match offsets::resolve_struct_offsets(btf) {
        Ok((_, report)) if report.absent.is_empty() => {
            let mut detail = "every task_struct, css_set, cgroup, kernfs_node and sock member \
                              found with the expected size"
                .to_owned();
            if !report.notes.is_empty() {
                detail.push_str("; ");
                detail.push_str(&report.notes.join("; "));
            }
            Check::ok(NAME, detail)
        }
        Ok((_, report)) => Check::warn(
            NAME,
            report.notes.join("; "),
            "the agent runs with the reduced detail named above (kernel 5.15 or later has every \
             member)",
        ),
        Err(e) => Check::failed_step(
            NAME,
            e,
            "this kernel's structs differ from what the probes read: an agent update is \
             needed (report the member named above)",
        ),
    }
}
