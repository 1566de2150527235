//! A full disk: `put` fails with an error, committed records stay
//! readable, and the vault works again once space is back. The disk is a
//! real tmpfs the test mounts (needs root, as in CI; elsewhere the test
//! says so and checks nothing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use llmvault::{Error, Vault};

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(size: &str) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("llmvault-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

#[test]
fn a_full_disk_fails_puts_and_keeps_what_was_committed() {
    if !is_root() {
        println!("SKIPPED: mounting a small tmpfs needs root");
        return;
    }
    let mount = Mount::tmpfs("1m").expect("root can mount a tmpfs");
    let clock = std::sync::Arc::new(llmvault::clock::ManualClock::new(start()));
    let o = opts(&clock);
    let path = mount.path().join("v.vault");
    let vault = Vault::create(&path, key(), &o).unwrap();

    let body = "z".repeat(2000);
    let mut committed = Vec::new();
    let err = loop {
        match vault.put(record(
            "c",
            Some("s"),
            &format!("{} {body}", committed.len()),
        )) {
            Ok(id) => committed.push(id),
            Err(e) => break e,
        }
        assert!(committed.len() < 10_000, "the disk never filled");
    };
    assert!(
        committed.len() > 10,
        "some records fit before the disk filled"
    );
    assert!(matches!(err, Error::DiskFull), "{err:?}");

    // The failed put left nothing half-done; everything committed reads.
    for (i, id) in committed.iter().enumerate() {
        let rec = vault.get(*id).unwrap();
        assert_eq!(rec.prompt()[0].content(), format!("prompt: {i} {body}"));
    }
    // Still full: a batch fails as a whole.
    let err = vault
        .put_batch(
            (0..50)
                .map(|i| record("c", None, &format!("b{i}")))
                .collect(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::DiskFull), "{err:?}");

    mount.resize("16m");
    let later = vault
        .put(record("c", Some("s"), "after space came back"))
        .unwrap();
    drop(vault);
    let vault = Vault::open(&path, key(), &o).unwrap();
    assert_eq!(
        vault.get(later).unwrap().prompt()[0].content(),
        "prompt: after space came back"
    );
    assert_eq!(vault.verify().unwrap().records, committed.len() + 1);
}
