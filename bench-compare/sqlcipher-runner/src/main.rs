//! The SQLCipher and OpenSSL side of `llmvault-bench-compare`. Run by the
//! main binary with a JSON plan as its only argument; prints its figures
//! as JSON on stdout. Lives in a workspace of its own because SQLCipher's
//! libsqlite3 cannot link into a binary with llmvault's plain SQLite.

#[path = "../../src/peer.rs"]
#[allow(dead_code)]
mod peer;
#[path = "../../src/timing.rs"]
mod timing;

use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;
use peer::{Figure, Plan};

/// A raw 256-bit key in hex: SQLCipher uses it as is, with no KDF.
const RAW_KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c2b7e151628aed2a6abf7158809cf4f3c";

fn main() {
    let arg = std::env::args()
        .nth(1)
        .expect("usage: runner '<plan json>'");
    let plan: Plan = serde_json::from_str(&arg).expect("plan");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut figures = peer::run_all(&plan, dir.path(), Some(RAW_KEY)).expect("sqlcipher");
    let version: String = rusqlite::Connection::open_in_memory()
        .and_then(|c| c.query_row("PRAGMA cipher_version", [], |r| r.get(0)))
        .unwrap_or_default();
    eprintln!(
        "runner: SQLCipher {version}, {}",
        openssl::version::version()
    );
    figures.extend(openssl_aead());
    println!("{}", serde_json::to_string(&figures).expect("json"));
}

/// EVP AES-256-GCM with the key schedule set up once (as llmvault keeps
/// its cipher per data key), a 12-byte nonce and a 76-byte AAD like ours.
fn openssl_aead() -> Vec<Figure> {
    let key = [7u8; 32];
    let aad = [3u8; 76];
    let mut enc = CipherCtx::new().expect("ctx");
    enc.encrypt_init(Some(Cipher::aes_256_gcm()), Some(&key), None)
        .expect("init");
    let mut dec = CipherCtx::new().expect("ctx");
    dec.decrypt_init(Some(Cipher::aes_256_gcm()), Some(&key), None)
        .expect("init");
    let mut out = Vec::new();
    for (len, name) in [(1024usize, "1KiB"), (1 << 20, "1MiB")] {
        let mut buf = vec![0x5Au8; len];
        let mut tag = [0u8; 16];
        let mut nonce = [0u8; 12];
        let mut seal = |buf: &mut [u8], tag: &mut [u8; 16], nonce: &mut [u8; 12]| {
            let next = u64::from_le_bytes(nonce[..8].try_into().expect("8 bytes")) + 1;
            nonce[..8].copy_from_slice(&next.to_le_bytes());
            enc.encrypt_init(None, None, Some(&nonce[..])).expect("iv");
            enc.cipher_update(&aad, None).expect("aad");
            let n = buf.len();
            enc.cipher_update_inplace(buf, n).expect("update");
            enc.cipher_final(&mut []).expect("final");
            enc.tag(tag).expect("tag");
        };
        let rate = timing::rate(|| {
            seal(&mut buf, &mut tag, &mut nonce);
            1
        });
        out.push(Figure::new(
            format!("seal/{name}"),
            rate * len as f64,
            "B/s",
        ));
        let rate = timing::rate(|| {
            seal(&mut buf, &mut tag, &mut nonce);
            dec.decrypt_init(None, None, Some(&nonce[..])).expect("iv");
            dec.set_tag(&tag).expect("tag");
            dec.cipher_update(&aad, None).expect("aad");
            let n = buf.len();
            dec.cipher_update_inplace(&mut buf, n).expect("update");
            dec.cipher_final(&mut []).expect("authentic");
            1
        });
        out.push(Figure::new(format!("seal+open/{name}"), rate, "pairs/s"));
    }
    out
}
