//! A command's output on stdout. A reader that stops early (`jars status | head -3`, a pager
//! quit) closes the pipe: that ends the output, not the command, which keeps its exit code
//! (`status`'s 0/1/69). `println!` would panic there and exit 101.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout failed: later output is dropped without trying again.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `bytes` to stdout unless the reader is gone. Another failure (a full disk) is said
/// once on stderr; the command's outcome stays what it was.
pub fn write_bytes(bytes: &[u8]) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != ErrorKind::BrokenPipe {
            eprintln!("jars: cannot write to stdout: {e}");
        }
    }
}

/// `text` on stdout (see [`write_bytes`]).
pub fn write(text: std::fmt::Arguments<'_>) {
    match text.as_str() {
        Some(s) => write_bytes(s.as_bytes()),
        None => write_bytes(text.to_string().as_bytes()),
    }
}

/// `println!` for command output: a closed pipe ends the output quietly ([`write`]).
macro_rules! out {
    () => {
        $crate::cli::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use out;
