//! Shared helpers: a fixture vault, command builders for the binary, output parsing.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_llmvault");
pub(crate) const PASSPHRASE: &str = "correct horse battery staple";

/// A vault in a temporary folder, opened with a passphrase file.
pub(crate) struct Fixture {
    dir: tempfile::TempDir,
    pub(crate) vault: PathBuf,
    /// The keys store given with `--keys`, for a vault with its keys apart.
    pub(crate) keys: Option<PathBuf>,
    pub(crate) passphrase_file: PathBuf,
    /// Global flags given to every run (PostgreSQL's `--schema`, `--ca-file`).
    global: Vec<String>,
}

impl Fixture {
    /// A new vault made with the cheapest KDF.
    pub(crate) fn new() -> Self {
        Self::made(false)
    }

    /// A new vault with its keys in a file of their own (`--keys`).
    pub(crate) fn keys_apart() -> Self {
        Self::made(true)
    }

    fn made(keys_apart: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let passphrase_file = dir.path().join("passphrase");
        std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).unwrap();
        let f = Self {
            vault: dir.path().join("log.vault"),
            keys: keys_apart.then(|| dir.path().join("keys.vault")),
            dir,
            passphrase_file,
            global: Vec::new(),
        };
        f.ok(&["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"]);
        f
    }

    /// A new vault in the test PostgreSQL server (`.ci/postgres`), in a
    /// schema of its own, keys apart in a second one if asked; `None`
    /// without a server (a failure under `CI=true`).
    pub(crate) fn postgres(keys_apart: bool) -> Option<Self> {
        let conninfo = std::env::var("LLMVAULT_TEST_POSTGRES").ok();
        let ca = std::env::var("LLMVAULT_TEST_POSTGRES_CA").ok();
        let (Some(conninfo), Some(ca)) = (conninfo, ca) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true and no PostgreSQL server: run under `bash .ci/postgres`"
            );
            eprintln!("skipped: no PostgreSQL server (run under `bash .ci/postgres`)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let passphrase_file = dir.path().join("passphrase");
        std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).unwrap();
        let schema = format!(
            "cli_{}_{}",
            std::process::id(),
            dir.path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "")
        );
        let f = Self {
            vault: PathBuf::from(&conninfo),
            keys: keys_apart.then(|| PathBuf::from(&conninfo)),
            dir,
            passphrase_file,
            global: vec!["--schema".into(), schema, "--ca-file".into(), ca],
        };
        f.ok(&["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"]);
        Some(f)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary with `--vault` set and no key given.
    pub(crate) fn bare(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--vault").arg(&self.vault);
        if let Some(keys) = &self.keys {
            cmd.arg("--keys").arg(keys);
        }
        cmd.args(&self.global);
        for var in [
            "LLMVAULT_PATH",
            "LLMVAULT_KEYS",
            "LLMVAULT_PASSPHRASE",
            "LLMVAULT_NEW_PASSPHRASE",
            "LLMVAULT_ACTOR",
            "LLMVAULT_INGEST_KEY",
        ] {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// The binary with the vault's passphrase file.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.bare();
        cmd.arg("--passphrase-file")
            .arg(&self.passphrase_file)
            .args(args);
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        succeeded(self.run(args), args)
    }

    /// Runs with `--json`; parses each stdout line.
    pub(crate) fn json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        parse_lines(&self.ok(&all))
    }

    /// Runs with `input` on stdin and expects success.
    pub(crate) fn ok_with_stdin(&self, args: &[&str], input: &str) -> String {
        succeeded(with_stdin(self.cmd(args), input), args)
    }

    /// Stores a record from flags; returns its id.
    pub(crate) fn put(
        &self,
        conversation: &str,
        subject: &str,
        prompt: &str,
        extra: &[&str],
    ) -> u64 {
        let mut args = vec![
            "put",
            "--conversation",
            conversation,
            "--subject",
            subject,
            "--model",
            "gpt-4o",
            "--prompt",
            prompt,
            "--response",
            "an answer",
        ];
        args.extend_from_slice(extra);
        self.ok(&args).trim().parse().unwrap()
    }
}

/// Runs `cmd` with `input` on stdin.
pub(crate) fn with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) fn succeeded(out: Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "{args:?} failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub(crate) fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The fields an export carries over, without the id.
pub(crate) fn content(v: &Value) -> Value {
    let mut v = v.clone();
    v.as_object_mut().unwrap().remove("id");
    v
}
