//! One message for a failed command: what failed, then each cause once.
//!
//! Some errors of the libraries underneath repeat their source in their own
//! text (`"…: {source}"`); a cause whose text the lines above already hold
//! is left out, so nothing is said twice.

use std::error::Error;

/// `error: <what failed>` and one `  caused by: <cause>` line per cause.
pub fn render(error: &(dyn Error + 'static)) -> String {
    let mut out = format!("error: {error}");
    let mut said = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !said.contains(&text) {
            out.push_str("\n  caused by: ");
            out.push_str(&text);
            said.push('\n');
            said.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cannot open the recording")]
        Open(#[source] std::io::Error),
        #[error("cannot read: {0}")]
        Repeats(#[source] std::io::Error),
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        assert_eq!(
            render(&Outer::Open(io())),
            "error: cannot open the recording\n  caused by: no such file"
        );
        assert_eq!(
            render(&Outer::Repeats(io())),
            "error: cannot read: no such file"
        );
    }
}
