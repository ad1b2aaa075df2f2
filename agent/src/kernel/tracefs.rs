//! tracefs discovery and tracepoint format parsing.
//!
//! Classic tracepoint records are laid out by the kernel's `TRACE_EVENT`
//! macros, and their field offsets are published in
//! `<tracefs>/events/<category>/<event>/format`. This module finds (or
//! mounts) tracefs and turns those files into [`TracepointFormat`]s.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use tracing::{debug, info};

/// Where tracefs is looked for, in order of preference.
pub const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
/// Where [`ensure_tracefs`] mounts tracefs when allowed to.
pub const MOUNT_POINT: &str = "/sys/kernel/tracing";

/// What went wrong while finding tracefs or reading a format file.
#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error(
        "tracefs is not mounted (looked in {tried:?}); mount it with \
         `mount -t tracefs tracefs /sys/kernel/tracing` or let the agent mount it"
    )]
    NotMounted { tried: Vec<PathBuf> },
    #[error("mounting tracefs at {target}: {source}")]
    MountFailed {
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("tracepoint {category}:{event} does not exist on this kernel ({path} is missing)")]
    EventNotFound {
        category: String,
        event: String,
        path: PathBuf,
    },
    #[error("cannot read {path}: {source}")]
    ReadFailed {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad line in tracepoint format {event}: {reason}: {line:?}")]
    BadFormatLine {
        event: String,
        line: String,
        reason: &'static str,
    },
    #[error("tracepoint format {event} lists no fields")]
    NoFields { event: String },
}

/// One `field:` line of a format file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldFormat {
    /// The field's identifier, e.g. `saddr` for `__u8 saddr[4]`.
    pub name: String,
    /// The whole declaration as printed by the kernel.
    pub decl: String,
    /// Byte offset from the start of the record (common fields included).
    pub offset: u32,
    pub size: u32,
    pub signed: bool,
    /// `__data_loc` field: a u32 holding (length << 16 | offset) of the data.
    pub is_data_loc: bool,
}

/// Parsed `format` file of one tracepoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracepointFormat {
    /// `category:event`, for messages.
    pub event: String,
    /// The tracepoint's id (`ID:` line), when present.
    pub id: Option<u32>,
    pub fields: Vec<FieldFormat>,
}

impl TracepointFormat {
    /// Parses the text of a format file; `event` is only used in messages.
    pub fn parse(event: &str, text: &str) -> Result<Self, TracefsError> {
        let mut id = None;
        let mut fields = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("ID:") {
                id = rest.trim().parse().ok();
            } else if line.starts_with("field:") {
                fields.push(
                    parse_field(line).map_err(|reason| TracefsError::BadFormatLine {
                        event: event.to_owned(),
                        line: line.to_owned(),
                        reason,
                    })?,
                );
            }
        }
        if fields.is_empty() {
            return Err(TracefsError::NoFields {
                event: event.to_owned(),
            });
        }
        Ok(TracepointFormat {
            event: event.to_owned(),
            id,
            fields,
        })
    }

    pub fn field(&self, name: &str) -> Option<&FieldFormat> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Byte offset of field `name`, if the tracepoint has it.
    pub fn offset(&self, name: &str) -> Option<u32> {
        self.field(name).map(|f| f.offset)
    }
}

/// Parses `field:<decl>; offset:N; size:N; signed:N;` (`signed` may be missing
/// on old kernels).
fn parse_field(line: &str) -> Result<FieldFormat, &'static str> {
    let (mut decl, mut offset, mut size, mut signed) = (None, None, None, false);
    for part in line.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once(':').ok_or("attribute without `:`")?;
        let number = || {
            value
                .trim()
                .parse::<u32>()
                .map_err(|_| "attribute is not a number")
        };
        match key.trim() {
            "field" => decl = Some(value.trim()),
            "offset" => offset = Some(number()?),
            "size" => size = Some(number()?),
            "signed" => signed = number()? != 0,
            _ => {}
        }
    }
    let decl = decl.ok_or("no declaration")?;
    Ok(FieldFormat {
        name: field_name(decl)
            .ok_or("no identifier in declaration")?
            .to_owned(),
        decl: decl.to_owned(),
        offset: offset.ok_or("no offset")?,
        size: size.ok_or("no size")?,
        signed,
        is_data_loc: decl.starts_with("__data_loc"),
    })
}

/// The declared identifier: the last identifier once trailing array
/// dimensions are removed (`char comm[16]` → `comm`,
/// `__data_loc char[] filename` → `filename`).
fn field_name(decl: &str) -> Option<&str> {
    let mut d = decl.trim_end();
    while d.ends_with(']') {
        d = d[..d.rfind('[')?].trim_end();
    }
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    // The identifier starts after the last character that is not part of
    // one, whatever its width in UTF-8 (a format file is outside data).
    let start = d
        .char_indices()
        .rev()
        .find(|&(_, c)| !is_ident(c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let name = &d[start..];
    (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some(name)
}

/// A mounted tracefs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracefs {
    root: PathBuf,
}

impl Tracefs {
    /// Uses `root` as tracefs without checking (tests use a plain directory).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Tracefs { root: root.into() }
    }

    /// Finds a mounted tracefs: the usual locations first, then any other
    /// tracefs mount listed in `/proc/self/mountinfo`.
    pub fn locate() -> Option<Self> {
        let mut candidates: Vec<PathBuf> = CANDIDATES.iter().map(PathBuf::from).collect();
        match std::fs::read_to_string("/proc/self/mountinfo") {
            Ok(text) => candidates.extend(tracefs_mounts(&text)),
            Err(e) => debug!(error = %e, "cannot read /proc/self/mountinfo"),
        }
        candidates
            .into_iter()
            .find(|c| c.join("events").is_dir())
            .map(Tracefs::at)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads and parses `events/<category>/<event>/format`.
    pub fn field_offsets(
        &self,
        category: &str,
        event: &str,
    ) -> Result<TracepointFormat, TracefsError> {
        let dir = self.root.join("events").join(category).join(event);
        let path = dir.join("format");
        let text = std::fs::read_to_string(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                TracefsError::EventNotFound {
                    category: category.to_owned(),
                    event: event.to_owned(),
                    path: dir.clone(),
                }
            } else {
                TracefsError::ReadFailed {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        TracepointFormat::parse(&format!("{category}:{event}"), &text)
    }
}

/// Mount points of every `tracefs` filesystem in mountinfo text.
fn tracefs_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            let mount_point = left.split_whitespace().nth(4)?;
            (fstype == "tracefs").then(|| PathBuf::from(unescape_mountinfo(mount_point)))
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space, etc.).
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push(
                    d.iter()
                        .fold(0u8, |acc, b| acc.wrapping_mul(8).wrapping_add(b - b'0')),
                );
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Returns the mounted tracefs, mounting it at [`MOUNT_POINT`] first when it
/// is missing and `allow_mount` is set (needs CAP_SYS_ADMIN).
pub fn ensure_tracefs(allow_mount: bool) -> Result<Tracefs, TracefsError> {
    // Serializes look-then-mount so concurrent callers do not stack mounts.
    static MOUNTING: Mutex<()> = Mutex::new(());
    let _guard = MOUNTING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = Tracefs::locate() {
        debug!(root = %found.root.display(), "found tracefs");
        return Ok(found);
    }
    if !allow_mount {
        return Err(TracefsError::NotMounted {
            tried: CANDIDATES.iter().map(PathBuf::from).collect(),
        });
    }
    let target = PathBuf::from(MOUNT_POINT);
    mount_tracefs(&target).map_err(|source| TracefsError::MountFailed {
        target: target.clone(),
        source,
    })?;
    info!(target = %target.display(), "mounted tracefs");
    let mounted = Tracefs::at(target);
    if mounted.root.join("events").is_dir() {
        Ok(mounted)
    } else {
        Err(TracefsError::NotMounted {
            tried: vec![mounted.root],
        })
    }
}

fn mount_tracefs(target: &Path) -> std::io::Result<()> {
    let invalid = |_| std::io::Error::from(std::io::ErrorKind::InvalidInput);
    let source = CString::new("tracefs").map_err(invalid)?;
    let dir = CString::new(target.as_os_str().as_encoded_bytes()).map_err(invalid)?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the
    // call; a null data pointer means "no mount options".
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            dir.as_ptr(),
            source.as_ptr(),
            flags,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests;
