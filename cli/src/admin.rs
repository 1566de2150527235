//! Looking after a vault: `init`, `purge`, `erase`, `verify`, `audit`,
//! `passwd`, `rotate`, `stats`, `recovery`.

use llmvault::audit::{AuditEntry, AuditHead, AuditOutcome};
use llmvault::{KdfParams, SubjectId, Vault};
use serde_json::json;

use crate::args::{Audit, Global, Kdf, Passwd, Recovery};
use crate::fail::Fail;
use crate::keys::{self, Sources};
use crate::output::{Out, progress};
use crate::time::{JsonTime, show};

pub fn init(g: &Global, kdf: &Kdf, out: &mut Out) -> Result<(), Fail> {
    let path = crate::vault_path(g)?;
    let params = kdf_params(kdf)?;
    let taken = |p: &std::path::Path| !crate::is_database(p) && p.exists();
    if taken(path) || g.keys.as_deref().is_some_and(taken) {
        return Err(llmvault::Error::AlreadyExists.into());
    }
    let key = Sources {
        file: g.passphrase_file.as_deref(),
        env: keys::PASSPHRASE_ENV,
        key_file: g.key_file.as_ref(),
        what: "passphrase",
        confirm: true,
    }
    .key()?;
    Vault::create_in(crate::storage(g, path), &key, crate::options(g).kdf(params))?;
    out.report(
        &format!("created vault {}", crate::shown(g, path)),
        &json!({ "created": path }),
    )
}

pub fn purge(g: &Global, maintenance: bool, out: &mut Out) -> Result<(), Fail> {
    let report = if maintenance {
        let storage = crate::existing_vault(g)?;
        let bar = progress("purging");
        let report = Vault::open_for_maintenance_in(&storage)?.purge_expired();
        bar.finish_and_clear();
        report?
    } else {
        let vault = crate::open(g)?;
        let bar = progress("purging");
        let report = vault.purge_expired();
        bar.finish_and_clear();
        report?
    };
    out.report(
        &format!(
            "purged {} expired record(s); destroyed {} data key(s)",
            report.records, report.keys_destroyed
        ),
        &json!({ "records": report.records, "keys_destroyed": report.keys_destroyed }),
    )
}

pub fn erase(g: &Global, subject: &str, out: &mut Out) -> Result<(), Fail> {
    let vault = crate::open(g)?;
    let report = vault.erase_subject(&SubjectId::new(subject))?;
    out.report(
        &format!(
            "erased subject {subject}: {} record(s); destroyed {} data key(s)",
            report.records, report.keys_destroyed
        ),
        &json!({ "subject": subject, "records": report.records,
                 "keys_destroyed": report.keys_destroyed }),
    )
}

/// Every key and record, then the audit chain. A failure names what failed
/// and exits 4.
pub fn verify(g: &Global, out: &mut Out) -> Result<(), Fail> {
    let vault = crate::open(g)?;
    let bar = progress("verifying");
    let result = vault
        .verify()
        .and_then(|records| Ok((records, vault.audit().verify()?)));
    bar.finish_and_clear();
    let (records, audit) = result?;
    let head = audit.head.to_text();
    out.report(
        &format!(
            "ok: {} record(s) ({} expired), {} data key(s) and {} audit entries authenticate; audit head {head}",
            records.records, records.expired, records.keys, audit.entries
        ),
        &json!({ "ok": true, "records": records.records, "expired": records.expired,
                 "keys": records.keys, "audit_entries": audit.entries, "audit_head": head }),
    )
}

pub fn audit(g: &Global, a: &Audit, out: &mut Out) -> Result<(), Fail> {
    let vault = crate::open(g)?;
    match a {
        Audit::Show { from, to } => {
            let from = from.unwrap_or(1);
            let to = to.unwrap_or(u64::MAX);
            for entry in vault.audit().entries(from..=to)? {
                audit_entry(&entry, out)?;
            }
            Ok(())
        }
        Audit::Verify { head } => {
            let report = match head {
                Some(text) => {
                    let head = AuditHead::from_text(text).ok_or_else(|| {
                        Fail::usage(format!(
                            "--head {text:?}: use SEQ:HEX as printed by `llmvault audit head`"
                        ))
                    })?;
                    vault.audit().verify_against(&head)?
                }
                None => vault.audit().verify()?,
            };
            let head = report.head.to_text();
            out.report(
                &format!("ok: {} audit entries; head {head}", report.entries),
                &json!({ "ok": true, "entries": report.entries, "head": head }),
            )
        }
        Audit::Head => {
            let head = vault.audit().head()?.to_text();
            out.report(&head, &json!({ "head": head }))
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn audit_entry(e: &AuditEntry, out: &mut Out) -> Result<(), Fail> {
    let action = format!("{:?}", e.action);
    let (outcome, error) = match &e.outcome {
        AuditOutcome::Ok => ("ok", None),
        AuditOutcome::Failed(msg) => ("failed", Some(msg.as_str())),
    };
    if out.json {
        let records: Vec<u64> = e.records.iter().map(|r| r.as_u64()).collect();
        let summary = e.record_summary.map(|s| {
            json!({ "count": s.count, "lowest": s.lowest.as_u64(),
                "highest": s.highest.as_u64(), "digest": hex(&s.digest) })
        });
        return out.json_line(&json!({
            "seq": e.seq, "at": JsonTime::from_system(e.at), "actor": e.actor,
            "purpose": e.purpose, "action": action, "records": records,
            "record_summary": summary,
            "target_tag": e.target_tag, "count": e.count, "outcome": outcome, "error": error,
        }));
    }
    let mut line = format!("{}\t{}\t{}", e.seq, show(e.at), e.actor);
    if let Some(purpose) = &e.purpose {
        line.push_str(&format!(" ({purpose})"));
    }
    line.push_str(&format!("\t{action}\t{outcome}"));
    if e.count > 0 {
        line.push_str(&format!("\tcount={}", e.count));
    }
    if !e.records.is_empty() {
        let ids: Vec<String> = e.records.iter().map(ToString::to_string).collect();
        line.push_str(&format!("\trecords={}", ids.join(",")));
    }
    if let Some(s) = &e.record_summary {
        line.push_str(&format!(
            "\trecords={} ids in {}..={} (sha256 {})",
            s.count,
            s.lowest,
            s.highest,
            hex(&s.digest)
        ));
    }
    if let Some(tag) = &e.target_tag {
        line.push_str(&format!("\ttarget={tag}"));
    }
    if let Some(error) = error {
        line.push_str(&format!("\terror={error}"));
    }
    out.line(&line)
}

pub fn passwd(g: &Global, p: &Passwd, out: &mut Out) -> Result<(), Fail> {
    let params = kdf_params(&p.kdf)?;
    // The new key's KDF cost comes from the options of the handle.
    let vault = crate::open_with(g, &crate::options(g).kdf(params))?;
    let new_key = Sources {
        file: p.new_passphrase_file.as_deref(),
        env: keys::NEW_PASSPHRASE_ENV,
        key_file: p.new_key_file.as_ref(),
        what: "new passphrase",
        confirm: true,
    }
    .key()?;
    let bar = progress("changing key");
    let result = vault.change_key(&new_key);
    bar.finish_and_clear();
    result?;
    out.report("key changed", &json!({ "changed": true }))
}

pub fn rotate(g: &Global, out: &mut Out) -> Result<(), Fail> {
    let vault = crate::open(g)?;
    let bar = progress("rotating");
    let retired = vault.rotate_keys();
    bar.finish_and_clear();
    let retired = retired?;
    out.report(
        &format!("retired {retired} data key(s); new records get fresh keys"),
        &json!({ "retired": retired }),
    )
}

/// Counts and sizes, read without the key (nothing is decrypted).
pub fn stats(g: &Global, out: &mut Out) -> Result<(), Fail> {
    let storage = crate::existing_vault(g)?;
    let s = Vault::open_for_maintenance_in(&storage)?.stats()?;
    if out.json {
        return out.json_line(&json!({
            "records": s.records, "expired": s.expired, "sealed_bytes": s.sealed_bytes,
            "oldest_expiry": s.oldest_expiry.map(JsonTime::from_system),
            "keys": s.keys, "audit_entries": s.audit_entries,
        }));
    }
    out.line(&format!(
        "records:       {} ({} expired)",
        s.records, s.expired
    ))?;
    out.line(&format!("sealed bytes:  {}", s.sealed_bytes))?;
    out.line(&format!(
        "oldest expiry: {}",
        s.oldest_expiry.map_or_else(|| "-".to_owned(), show)
    ))?;
    out.line(&format!("data keys:     {}", s.keys))?;
    out.line(&format!("audit entries: {}", s.audit_entries))
}

pub fn recovery(g: &Global, r: &Recovery, out: &mut Out) -> Result<(), Fail> {
    let vault = crate::open(g)?;
    match *r {
        Recovery::Split { k, n } => {
            let shares = vault.recovery_shares(k, n)?;
            let texts: Vec<_> = shares
                .iter()
                .map(llmvault::recovery::RecoveryShare::to_text)
                .collect();
            if out.json {
                let list: Vec<&str> = texts.iter().map(|t| t.as_str()).collect();
                return out.json_line(&json!({ "k": k, "n": n, "shares": list }));
            }
            for text in &texts {
                out.line(text)?;
            }
            eprintln!(
                "llmvault: give each share to a different person; any {k} of these {n} open the vault with --shares-file"
            );
            Ok(())
        }
        Recovery::Revoke => {
            vault.revoke_recovery()?;
            out.report("recovery shares revoked", &json!({ "revoked": true }))
        }
    }
}

fn kdf_params(kdf: &Kdf) -> Result<KdfParams, Fail> {
    KdfParams::new(
        kdf.kdf_memory_kib,
        kdf.kdf_iterations,
        KdfParams::DEFAULT_PARALLELISM,
    )
    .map_err(|e| Fail::usage(Fail::from(e).message))
}
