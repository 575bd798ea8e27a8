//! One printer: data → stdout, diagnostics and progress → stderr; text or JSON. Progress
//! bars only on a terminal; JSON mode prints nothing but the final document.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use crate::exec::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub struct Printer {
    pub format: Format,
    /// Last time a waiting line was printed without a progress bar (at most one per second).
    last_wait: Mutex<Option<std::time::Instant>>,
    bar: Mutex<Option<ProgressBar>>,
    tty: bool,
}

impl Printer {
    pub fn new(format: Format) -> Printer {
        Printer {
            format,
            bar: Mutex::new(None),
            last_wait: Mutex::new(None),
            tty: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// The command's result document (JSON mode).
    pub fn document(&self, v: &serde_json::Value) {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }

    /// Diagnostics for people; silent in JSON mode.
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.json() {
            self.suspend(|| eprintln!("{}", msg.as_ref()));
        }
    }

    fn suspend(&self, f: impl FnOnce()) {
        match self.bar.lock().ok().and_then(|b| b.clone()) {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    pub fn event(&self, e: Event) {
        if self.json() {
            return;
        }
        let mut guard = match self.bar.lock() {
            Ok(g) => g,
            Err(_) => return,
        };
        match e {
            Event::Round { round, steps } => {
                if let Some(b) = guard.take() {
                    b.finish_and_clear();
                }
                if round > 1 {
                    eprintln!("re-planned: {steps} more step(s)");
                }
                if self.tty {
                    let bar = ProgressBar::new(steps as u64);
                    bar.set_style(
                        ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed}] {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    *guard = Some(bar);
                }
            }
            Event::StepStart { index, total, step } => match &*guard {
                Some(bar) => bar.set_message(step),
                None => eprintln!("[{index}/{total}] {step} ..."),
            },
            Event::StepWaiting {
                index,
                missing,
                first,
            } => match &*guard {
                Some(bar) => bar.set_message(format!("waiting: {missing} left, e.g. {first}")),
                None => {
                    let mut last = self.last_wait.lock().unwrap_or_else(|e| e.into_inner());
                    if last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1)) {
                        eprintln!("[{index}] waiting: {missing} condition(s) left, e.g. {first}");
                        *last = Some(std::time::Instant::now());
                    }
                }
            },
            Event::Moving {
                index,
                slots_done,
                slots_total,
                keys,
                elapsed,
            } => {
                let secs = elapsed.as_secs_f64().max(0.001);
                let rate = keys as f64 / secs;
                let eta = if slots_done > 0 {
                    secs * (slots_total - slots_done) as f64 / slots_done as f64
                } else {
                    0.0
                };
                let line = format!(
                    "moving slots: {slots_done}/{slots_total}, {keys} keys, {rate:.0} keys/s, ETA {eta:.1} s"
                );
                match &*guard {
                    Some(bar) => bar.set_message(line),
                    None => {
                        let mut last = self.last_wait.lock().unwrap_or_else(|e| e.into_inner());
                        if slots_done == slots_total
                            || last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1))
                        {
                            eprintln!("[{index}] {line}");
                            *last = Some(std::time::Instant::now());
                        }
                    }
                }
            }
            Event::StepDone {
                index,
                total,
                step,
                elapsed,
            } => match &*guard {
                Some(bar) => {
                    bar.println(format!("  ok  {step} ({} ms)", elapsed.as_millis()));
                    bar.inc(1);
                    if index == total {
                        bar.finish_and_clear();
                    }
                }
                None => eprintln!(
                    "[{index}/{total}] done: {step} ({} ms)",
                    elapsed.as_millis()
                ),
            },
        }
    }

    pub fn finish(&self) {
        if let Ok(mut g) = self.bar.lock()
            && let Some(b) = g.take()
        {
            b.finish_and_clear();
        }
    }
}
