//! Personal data in text: `pii mask` and `pii restore` around a model
//! call (the placeholders live in the vault, sealed per conversation), and
//! `pii scan`, which needs no vault.

use std::io::{IsTerminal, Read};

use llmvault::pii::Detector;
use llmvault::{ConversationId, SubjectId};
use zeroize::Zeroizing;

use crate::args::{Global, Pii};
use crate::fail::Fail;
use crate::output::Out;

pub fn run(g: &Global, command: &Pii, out: &mut Out) -> Result<(), Fail> {
    match command {
        Pii::Mask {
            conversation,
            subject,
        } => mask(g, conversation, subject.as_deref(), out),
        Pii::Restore { conversation } => restore(g, conversation, out),
        Pii::Scan => scan(out),
    }
}

/// Prints the text with placeholders; `--json`: the text and the
/// placeholders this call added (never their values).
fn mask(g: &Global, conversation: &str, subject: Option<&str>, out: &mut Out) -> Result<(), Fail> {
    let text = stdin_text("the text to mask")?;
    let vault = crate::open(g)?;
    let conversation = ConversationId::new(conversation);
    let masked = match subject {
        Some(s) => vault.pseudonymize_for(&conversation, &SubjectId::new(s), &text)?,
        None => vault.pseudonymize(&conversation, &text)?,
    };
    if out.json {
        let added: Vec<&str> = masked
            .new_mappings
            .iter()
            .map(|m| m.placeholder())
            .collect();
        return out.json_line(&serde_json::json!({ "text": masked.text, "added": added }));
    }
    out.text(&masked.text)
}

/// Prints the model's output with the real values back.
fn restore(g: &Global, conversation: &str, out: &mut Out) -> Result<(), Fail> {
    let text = stdin_text("the model's output")?;
    let vault = crate::open(g)?;
    let restored = Zeroizing::new(vault.restore(&ConversationId::new(conversation), &text)?);
    if out.json {
        return out.json_line(&serde_json::json!({ "text": *restored }));
    }
    out.text(&restored)
}

/// One line per finding: kind, then the byte range `start..end`. The
/// values themselves are not printed.
fn scan(out: &mut Out) -> Result<(), Fail> {
    let text = stdin_text("the text to scan")?;
    for finding in Detector::default().find(&text) {
        let (kind, range) = (finding.kind.label(), &finding.range);
        out.report(
            &format!("{kind}\t{}..{}", range.start, range.end),
            &serde_json::json!({ "kind": kind, "start": range.start, "end": range.end }),
        )?;
    }
    Ok(())
}

/// All of stdin, as UTF-8, wiped on drop.
fn stdin_text(what: &str) -> Result<Zeroizing<String>, Fail> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("llmvault: reading {what} from stdin (end with Ctrl-D)");
    }
    let mut bytes = Zeroizing::new(Vec::new());
    stdin.lock().read_to_end(&mut bytes)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| Fail::usage(format!("stdin is not UTF-8 text: {e}")))?;
    Ok(Zeroizing::new(text.to_owned()))
}
