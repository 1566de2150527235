//! `--postgres`: llmvault on PostgreSQL against plain PostgreSQL storing
//! the same bytes (rows as long as llmvault's sealed ones) in a table with
//! the same columns and indexes, through the same client crate
//! (`postgres`), the same server and settings (`synchronous_commit` on,
//! no TLS on the loopback for either side), at 1 and 4 concurrent
//! clients. Each llmvault client is a `Vault` handle of its own, as each
//! app server of a fleet would hold; each plain client a connection.
//!
//! The server comes from `LLMVAULT_TEST_POSTGRES` (`bash .ci/postgres
//! cargo run --release --manifest-path bench-compare/Cargo.toml --
//! --postgres`).

use std::time::Instant;

use llmvault::{
    ConversationId, KdfParams, KeySource, Message, NewRecord, RecordId, Storage, SubjectId, Vault,
    VaultOptions,
};

use crate::peer::{self, XorShift};

const CLIENTS: [usize; 2] = [1, 4];
const SUBJECTS: usize = 1000;
const TEXT_LEN: usize = 1024;

struct Scale {
    batches: usize,
    puts: usize,
    gets: usize,
}

fn conninfo() -> String {
    let full = std::env::var("LLMVAULT_TEST_POSTGRES")
        .expect("LLMVAULT_TEST_POSTGRES: run under `bash .ci/postgres`");
    // The loopback in clear for both sides (see the module comment).
    full.replace("host=localhost", "host=127.0.0.1")
}

fn storage(schema: &str) -> Storage {
    Storage::postgres(conninfo()).schema(schema).pool_size(2)
}

fn key() -> KeySource {
    KeySource::raw_key([7; 32])
}

fn opts() -> VaultOptions {
    VaultOptions::default().kdf(KdfParams::minimum())
}

fn record(client: usize, i: usize) -> NewRecord {
    let text: String = peer::payload(i, TEXT_LEN)
        .into_iter()
        .map(|b| char::from(b'a' + b % 26))
        .collect();
    NewRecord::new(ConversationId::new(format!(
        "c{client}-{:07}",
        peer::conversation_of(i)
    )))
    .subject(SubjectId::new(format!("u{:05}", i % SUBJECTS)))
    .model("gpt-4o")
    .prompt([Message::user(text)])
}

/// Runs `work(client)` on `clients` threads at once; operations per second.
fn concurrently(clients: usize, work: impl Fn(usize) -> usize + Sync) -> f64 {
    let start = Instant::now();
    let ops: usize = std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = (0..clients).map(|c| s.spawn(move || work(c))).collect();
        handles.into_iter().map(|h| h.join().expect("client")).sum()
    });
    ops as f64 / start.elapsed().as_secs_f64()
}

struct Figures {
    put_batch: f64,
    put: f64,
    get: f64,
}

fn llmvault_side(clients: usize, scale: &Scale) -> (Figures, usize) {
    let schema = format!("bench_llmvault_{clients}_{}", std::process::id());
    drop(Vault::create_in(storage(&schema), key(), opts()).expect("create"));
    let vaults: Vec<Vault> = (0..clients)
        .map(|_| Vault::open_in(storage(&schema), key(), opts()).expect("open"))
        .collect();
    let ids: Vec<std::sync::Mutex<Vec<RecordId>>> =
        (0..clients).map(|_| Default::default()).collect();
    let put_batch = concurrently(clients, |c| {
        let mut mine = Vec::new();
        for b in 0..scale.batches {
            let records = (b * 1000..(b + 1) * 1000).map(|i| record(c, i)).collect();
            mine.extend(vaults[c].put_batch(records).expect("put_batch"));
        }
        let n = mine.len();
        ids[c].lock().expect("ids").extend(mine);
        n
    });
    let put = concurrently(clients, |c| {
        for i in 0..scale.puts {
            vaults[c].put(record(c, 1_000_000 + i)).expect("put");
        }
        scale.puts
    });
    let get = concurrently(clients, |c| {
        let mine = ids[c].lock().expect("ids").clone();
        let mut rng = XorShift(0x9e37_79b9 + c as u64);
        for _ in 0..scale.gets {
            vaults[c].get(mine[rng.below(mine.len())]).expect("get");
        }
        scale.gets
    });
    let mut sql = postgres::Client::connect(&conninfo(), postgres::NoTls).expect("connect");
    let len: i32 = sql
        .query_one(
            &format!("SELECT max(octet_length(sealed)) FROM {schema}.records"),
            &[],
        )
        .expect("sealed length")
        .get(0);
    drop(vaults);
    let _ = sql.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
    (
        Figures {
            put_batch,
            put,
            get,
        },
        len as usize,
    )
}

fn plain_side(clients: usize, scale: &Scale, sealed_len: usize) -> Figures {
    let schema = format!("bench_plain_{clients}_{}", std::process::id());
    let mut setup = postgres::Client::connect(&conninfo(), postgres::NoTls).expect("connect");
    setup
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema};
             CREATE TABLE records (id bigint PRIMARY KEY, conversation bytea NOT NULL,
                 subject bytea, expires_at bigint NOT NULL, sealed bytea NOT NULL);
             CREATE INDEX records_conversation ON records (conversation);
             CREATE INDEX records_subject ON records (subject) WHERE subject IS NOT NULL;
             CREATE INDEX records_expiry ON records (expires_at);"
        ))
        .expect("schema");
    let connect = || {
        let mut c = postgres::Client::connect(&conninfo(), postgres::NoTls).expect("connect");
        c.batch_execute(&format!("SET search_path TO {schema}"))
            .expect("search_path");
        c
    };
    let row = |client: usize, i: usize| {
        let id = (client * 100_000_000 + i) as i64;
        let conversation = peer::tag(1, client * 100_000_000 + peer::conversation_of(i)).to_vec();
        let subject = peer::tag(2, i % SUBJECTS).to_vec();
        (id, conversation, subject, peer::payload(i, sealed_len))
    };
    let insert = "INSERT INTO records (id, conversation, subject, expires_at, sealed) \
                  VALUES ($1, $2, $3, $4, $5)";
    let expires: i64 = 4_102_444_800_000;
    // A batch as a careful application writes one: one statement of
    // arrays (as llmvault sends its held-back records), not a statement
    // per row.
    let insert_batch = "INSERT INTO records (id, conversation, subject, expires_at, sealed) \
                        SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], \
                        $4::bigint[], $5::bytea[])";
    let put_batch = concurrently(clients, |c| {
        let mut conn = connect();
        let statement = conn.prepare(insert_batch).expect("prepare");
        for b in 0..scale.batches {
            let rows: Vec<_> = (b * 1000..(b + 1) * 1000).map(|i| row(c, i)).collect();
            let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
            let conversations: Vec<&[u8]> = rows.iter().map(|r| r.1.as_slice()).collect();
            let subjects: Vec<&[u8]> = rows.iter().map(|r| r.2.as_slice()).collect();
            let expiries = vec![expires; rows.len()];
            let sealed: Vec<&[u8]> = rows.iter().map(|r| r.3.as_slice()).collect();
            let mut txn = conn.transaction().expect("begin");
            txn.execute(
                &statement,
                &[&ids, &conversations, &subjects, &expiries, &sealed],
            )
            .expect("insert");
            txn.commit().expect("commit");
        }
        scale.batches * 1000
    });
    let put = concurrently(clients, |c| {
        let mut conn = connect();
        let statement = conn.prepare(insert).expect("prepare");
        for i in 0..scale.puts {
            let (id, conv, subj, sealed) = row(c, 1_000_000 + i);
            conn.execute(&statement, &[&id, &conv, &subj, &expires, &sealed])
                .expect("insert");
        }
        scale.puts
    });
    let get = concurrently(clients, |c| {
        let mut conn = connect();
        let statement = conn
            .prepare("SELECT sealed FROM records WHERE id = $1")
            .expect("prepare");
        let mut rng = XorShift(0x9e37_79b9 + c as u64);
        for _ in 0..scale.gets {
            let (id, ..) = row(c, rng.below(scale.batches * 1000));
            let sealed: Vec<u8> = conn.query_one(&statement, &[&id]).expect("get").get(0);
            assert_eq!(sealed.len(), sealed_len);
        }
        scale.gets
    });
    let _ = setup.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
    Figures {
        put_batch,
        put,
        get,
    }
}

/// Runs every row and prints the table.
pub fn run(quick: bool) {
    let scale = if quick {
        Scale {
            batches: 1,
            puts: 20,
            gets: 400,
        }
    } else {
        Scale {
            batches: 5,
            puts: 200,
            gets: 20_000,
        }
    };
    let mut rows = Vec::new();
    for clients in CLIENTS {
        eprintln!("PostgreSQL, {clients} client(s): llmvault...");
        let (ours, sealed_len) = llmvault_side(clients, &scale);
        eprintln!("PostgreSQL, {clients} client(s): plain, rows of {sealed_len} bytes...");
        let plain = plain_side(clients, &scale, sealed_len);
        rows.push((clients, ours, plain));
    }
    println!(
        "| workload (records/s) | clients | llmvault on PostgreSQL | plain PostgreSQL | ratio |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (clients, ours, plain) in &rows {
        for (name, a, b) in [
            (
                "put_batch of 1,000 over 1,000 subjects",
                ours.put_batch,
                plain.put_batch,
            ),
            ("single durable put", ours.put, plain.put),
            ("random get (audited)", ours.get, plain.get),
        ] {
            println!("| {name} | {clients} | {a:.0} | {b:.0} | {:.2}× |", a / b);
        }
    }
    if let [(_, one, _), (_, four, _)] = rows.as_slice() {
        println!();
        println!("| llmvault, 4 clients / 1 client | scaling |");
        println!("|---|---:|");
        for (name, a, b) in [
            ("put_batch", four.put_batch, one.put_batch),
            ("single put", four.put, one.put),
            ("random get", four.get, one.get),
        ] {
            println!("| {name} | {:.2}× |", a / b);
        }
    }
}
