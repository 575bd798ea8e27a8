//! Exit codes: one enum, documented in the man page and README. Error types that know their
//! exit code say it (`ExecError::exit`); the CLI asks them instead of matching messages.

/// The process exit code of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// Invalid input, refused operation, or drift found by `plan --exit-code`.
    User = 1,
    /// Unexpected failure while talking to the system.
    Failure = 2,
    /// Ctrl-C; every step is safe to resume.
    Interrupted = 130,
}
