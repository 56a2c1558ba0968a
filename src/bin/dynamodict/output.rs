//! What a command prints on stdout, held back until it succeeds: a failed command prints
//! nothing there (its error goes to stderr).

use std::fmt::Display;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use crate::error::{CliError, CliResult};

/// The pending output of a command.
#[derive(Default)]
pub struct Output {
    text: Vec<u8>,
    /// A temporary file to copy to stdout after `text` (large output: `export`), removed after.
    spooled: Option<PathBuf>,
}

impl Output {
    /// One line.
    pub fn line(&mut self, line: impl Display) -> CliResult {
        writeln!(self.text, "{line}").map_err(|e| CliError::new(e.to_string()))
    }

    /// One line per item.
    pub fn lines<T: Display>(&mut self, lines: impl IntoIterator<Item = T>) -> CliResult {
        lines.into_iter().try_for_each(|line| self.line(line))
    }

    /// A JSON value, pretty-printed.
    pub fn json(&mut self, value: &serde_json::Value) -> CliResult {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::new(format!("cannot print the value: {e}")))?;
        self.line(text)
    }

    /// Copies the temporary file `path` to stdout after the text (and removes it).
    pub fn spool(&mut self, path: PathBuf) {
        self.spooled = Some(path);
    }

    /// Writes it all to stdout. A reader that went away (`| head`) is not an error.
    pub fn flush(mut self) -> CliResult {
        let result = self.write_all();
        self.discard();
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other.map_err(|e| CliError::new(format!("cannot write to stdout: {e}"))),
        }
    }

    fn write_all(&mut self) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        stdout.write_all(&self.text)?;
        if let Some(path) = &self.spooled {
            io::copy(&mut File::open(path)?, &mut stdout)?;
        }
        stdout.flush()
    }

    /// Drops what was not printed (a failed command), removing the temporary file.
    pub fn discard(&mut self) {
        self.text.clear();
        if let Some(path) = self.spooled.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}
