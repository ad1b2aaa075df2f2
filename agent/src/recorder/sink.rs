//! The NDJSON output: numbers records in the order they are written.

use std::io::Write;

use crate::event::Record;

use crate::event_loop::LoopError;

pub struct Sink<'a> {
    out: &'a mut (dyn Write + Send),
    next_seq: u64,
}

impl<'a> Sink<'a> {
    pub fn new(out: &'a mut (dyn Write + Send)) -> Self {
        Self { out, next_seq: 0 }
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.next_seq
    }

    pub fn write(&mut self, mut record: Record) -> Result<(), LoopError> {
        record.seq = self.next_seq;
        serde_json::to_writer(&mut *self.out, &record)
            .map_err(|e| LoopError::WriteFailed(e.into()))?;
        self.out.write_all(b"\n").map_err(LoopError::WriteFailed)?;
        self.next_seq += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), LoopError> {
        self.out.flush().map_err(LoopError::WriteFailed)
    }
}
