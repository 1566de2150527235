//! Nothing a caller stores reaches the disk in clear: not the prompt, the
//! response, the model, metadata, tags, nor the conversation or subject id.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use llmvault::{ConversationId, Message, NewRecord, SubjectId};

const MARKERS: [&str; 8] = [
    "MRK-PROMPT-a81f",
    "MRK-RESPONSE-b92e",
    "MRK-MODEL-c03d",
    "MRK-METAKEY-d14c",
    "MRK-METAVAL-e25b",
    "MRK-TAG-f36a",
    "MRK-CONV-0479",
    "MRK-SUBJECT-1588",
];

fn marked(n: usize) -> NewRecord {
    NewRecord::new(ConversationId::new(MARKERS[6]))
        .subject(SubjectId::new(MARKERS[7]))
        .model(MARKERS[2])
        .prompt([
            Message::system("sys"),
            Message::user(format!("{} #{n}", MARKERS[0])),
        ])
        .response(Message::assistant(format!("{} #{n}", MARKERS[1])))
        .tag(MARKERS[5])
        .meta(MARKERS[3], MARKERS[4])
}

fn assert_no_markers(dir: &std::path::Path, when: &str) -> usize {
    let files = files_in(dir);
    assert!(!files.is_empty());
    for (name, bytes) in &files {
        for m in MARKERS {
            assert!(
                !contains(bytes, m.as_bytes()),
                "{when}: marker {m} found in {name}"
            );
        }
    }
    files.len()
}

#[test]
fn no_marker_in_any_file_while_open_and_after_close() {
    let mut t = new_vault();
    let id = t.put(marked(0)).unwrap();
    t.put_batch((1..50).map(marked).collect()).unwrap();
    // Sanity: the markers really were stored (and come back decrypted).
    let rec = t.get(id).unwrap();
    assert!(rec.prompt()[1].content().contains(MARKERS[0]));
    assert_eq!(rec.meta(MARKERS[3]), Some(MARKERS[4]));
    drop(rec);

    // While open: the database, its WAL and shared-memory file.
    let open_files = assert_no_markers(t.dir.path(), "while open");
    assert!(open_files >= 2, "expected the WAL beside the database");

    t.with_closed(|_| ());
    assert_no_markers(t.dir.path(), "after close");
}
