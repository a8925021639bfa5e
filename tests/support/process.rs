//! Running Sluice's own binaries (built by `make test` before the integration tests) as real
//! processes against the local control plane.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::Context as _;

use crate::TestEnv;

/// Where `cargo build` put the binaries: `SLUICE_BIN_DIR`, else `<workspace>/target/debug`.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("SLUICE_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("debug")
        })
}

/// A child process that is killed when dropped, and also when the test process dies without
/// dropping it (a watchdog shell waits for the test process to go away).
pub struct Proc {
    pub name: String,
    pub log: PathBuf,
    child: Child,
    watchdog: Option<Child>,
}

impl Proc {
    /// Starts `binary` (a file in [`bin_dir`]) with `args`, logging to
    /// `$SLUICE_STATE/logs/<name>.log` (or the temp dir).
    pub fn spawn(env: &TestEnv, name: &str, binary: &str, args: &[String]) -> anyhow::Result<Self> {
        let path = bin_dir().join(binary);
        anyhow::ensure!(
            path.exists(),
            "{} not found: build it first (make test runs `cargo build --workspace --bins`)",
            path.display()
        );
        let logs = env
            .vars
            .get("SLUICE_STATE")
            .map(|s| PathBuf::from(s).join("logs"))
            .unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&logs)?;
        let log = logs.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(&path)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", path.display()))?;
        let watchdog = Command::new("bash")
            .args([
                "-c",
                "while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; kill \"$2\" 2>/dev/null",
                "watchdog",
                &std::process::id().to_string(),
                &child.id().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        Ok(Self {
            name: name.to_string(),
            log,
            child,
            watchdog,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last `n` lines of the process's log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Sends SIGTERM and waits up to `grace` for a clean exit, then kills.
    pub fn terminate(&mut self, grace: std::time::Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if !self.running() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(w) = &mut self.watchdog {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}
