//! Man pages generated from the clap definitions (`redisctl(1)` and one page per
//! subcommand), checked in under man/; a test fails when they drift from `--help`.
//! `redisctl-topology(5)` is written by hand.

use clap::CommandFactory;

/// (file name, roff text) of every generated page.
pub fn pages() -> Vec<(String, Vec<u8>)> {
    let cmd = super::Cli::command();
    let mut out = Vec::new();
    let mut top = Vec::new();
    let _ = clap_mangen::Man::new(cmd.clone())
        .section("1")
        .render(&mut top);
    top.extend_from_slice(EXIT_STATUS.as_bytes());
    out.push(("redisctl.1".to_string(), top));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("redisctl-{}", sub.get_name());
        let sub = sub.clone().name(name.clone());
        let mut buf = Vec::new();
        let _ = clap_mangen::Man::new(sub).section("1").render(&mut buf);
        out.push((format!("{name}.1"), buf));
    }
    out
}

const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Success (for \fBplan \-\-exit\-code\fR: nothing to do; for \fBcheck\fR: no finding).
.TP
\fB1\fR
Invalid topology (including a password file others can read), refused operation (foreign node or process, wrong password, lagging replica, failover to a master, keys a slot move would overwrite), drift found by \fBplan \-\-exit\-code\fR, or findings of \fBcheck\fR.
.TP
\fB2\fR
Unexpected failure: a node did not answer (for \fBstatus\fR: no declared node answered), a step failed, a wait timed out.
.TP
\fB130\fR
Interrupted; every step is safe to resume, run \fBapply\fR again.
.SH "SEE ALSO"
\fBredisctl\-topology\fR(5), \fBredis\-server\fR(1), \fBredis\-sentinel\fR(1)
"#;

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn checked_in_man_pages_match_the_cli() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
        for (name, text) in super::pages() {
            let path = dir.join(&name);
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::write(&path, &text).unwrap();
            }
            let have = std::fs::read(&path).unwrap_or_else(|_| {
                panic!("man/{name} missing; run UPDATE_GOLDEN=1 cargo test manpages")
            });
            assert!(
                have == text,
                "man/{name} drifted from --help; run UPDATE_GOLDEN=1 cargo test manpages"
            );
        }
    }

    #[test]
    fn checked_in_completions_match_the_cli() {
        use clap::CommandFactory;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/completions");
        for (shell, file) in [
            (clap_complete::Shell::Bash, "redisctl.bash"),
            (clap_complete::Shell::Zsh, "_redisctl"),
            (clap_complete::Shell::Fish, "redisctl.fish"),
        ] {
            let mut text = Vec::new();
            clap_complete::generate(
                shell,
                &mut crate::cli::Cli::command(),
                "redisctl",
                &mut text,
            );
            let path = dir.join(file);
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            }
            let have = std::fs::read(&path).unwrap_or_default();
            assert!(
                have == text,
                "packaging/completions/{file} drifted; run UPDATE_GOLDEN=1 cargo test completions"
            );
        }
    }
}
