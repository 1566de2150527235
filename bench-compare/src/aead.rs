//! AES-256-GCM alone: llmvault's sealing layer (copy into a zeroizing
//! buffer, random nonce, record AAD), llmvault's AEAD backend by itself
//! (in place, no copy: AWS-LC by default), the `aes-gcm` crate (llmvault's
//! pure-Rust `rust-crypto` backend) and `ring`. OpenSSL runs in the
//! runner. Every side keeps its key schedule across messages and uses a
//! 76-byte AAD like llmvault's.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit, Nonce};
use llmvault::internals::SealBench;

use crate::peer::Figure;
use crate::timing::rate;

const SIZES: [(usize, &str); 2] = [(1024, "1KiB"), (1 << 20, "1MiB")];
const AAD: [u8; 76] = [3; 76];

fn figures(name: &str, len: usize, seal: f64, pair: Option<f64>) -> Vec<Figure> {
    let mut v = vec![Figure::new(
        format!("seal/{name}"),
        seal * len as f64,
        "B/s",
    )];
    if let Some(p) = pair {
        v.push(Figure::new(format!("seal+open/{name}"), p, "pairs/s"));
    }
    v
}

pub fn llmvault() -> Vec<Figure> {
    let bench = SealBench::default();
    let mut out = Vec::new();
    for (len, name) in SIZES {
        let plain = vec![0x5Au8; len];
        let seal = rate(|| {
            std::hint::black_box(bench.seal(&plain).expect("seal"));
            1
        });
        let pair = rate(|| {
            let sealed = bench.seal(&plain).expect("seal");
            std::hint::black_box(bench.open(sealed).expect("open"));
            1
        });
        out.extend(figures(name, len, seal, Some(pair)));
    }
    out
}

/// Distinct 96-bit nonces from a counter, as every side here uses them.
fn counter_nonces() -> impl FnMut() -> [u8; 12] {
    let mut n = 0u64;
    move || {
        n += 1;
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&n.to_le_bytes());
        b
    }
}

/// llmvault's AEAD backend in place, nonces from a counter like the peers.
pub fn llmvault_backend() -> Vec<Figure> {
    let bench = SealBench::default();
    let mut out = Vec::new();
    for (len, name) in SIZES {
        let mut buf = vec![0x5Au8; len];
        let mut nonce = counter_nonces();
        let seal = rate(|| {
            std::hint::black_box(bench.aead_seal(&nonce(), &AAD, &mut buf).expect("seal"));
            1
        });
        let pair = rate(|| {
            let nonce = nonce();
            let tag = bench.aead_seal(&nonce, &AAD, &mut buf).expect("seal");
            assert!(bench.aead_open(&nonce, &AAD, &mut buf, &tag));
            1
        });
        out.extend(figures(name, len, seal, Some(pair)));
    }
    out
}

pub fn aes_gcm() -> Vec<Figure> {
    let cipher = Aes256Gcm::new(&[7u8; 32].into());
    let mut out = Vec::new();
    for (len, name) in SIZES {
        let mut buf = vec![0x5Au8; len];
        let mut next = counter_nonces();
        let mut nonce = || Nonce::<Aes256Gcm>::from(next());
        let seal = rate(|| {
            let nonce = nonce();
            std::hint::black_box(
                cipher
                    .encrypt_inout_detached(&nonce, &AAD, buf.as_mut_slice().into())
                    .expect("seal"),
            );
            1
        });
        let pair = rate(|| {
            let nonce = nonce();
            let tag = cipher
                .encrypt_inout_detached(&nonce, &AAD, buf.as_mut_slice().into())
                .expect("seal");
            cipher
                .decrypt_inout_detached(&nonce, &AAD, buf.as_mut_slice().into(), &tag)
                .expect("open");
            1
        });
        out.extend(figures(name, len, seal, Some(pair)));
    }
    out
}

pub fn ring() -> Vec<Figure> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).expect("key"));
    let mut out = Vec::new();
    for (len, name) in SIZES {
        let mut buf = vec![0x5Au8; len + 16];
        let mut next = counter_nonces();
        let mut nonce = || Nonce::assume_unique_for_key(next());
        let seal = rate(|| {
            let tag = key
                .seal_in_place_separate_tag(nonce(), Aad::from(AAD), &mut buf[..len])
                .expect("seal");
            let _ = std::hint::black_box(tag);
            1
        });
        let pair = rate(|| {
            let b = nonce();
            let again = Nonce::assume_unique_for_key(*b.as_ref());
            let tag = key
                .seal_in_place_separate_tag(b, Aad::from(AAD), &mut buf[..len])
                .expect("seal");
            buf[len..].copy_from_slice(tag.as_ref());
            std::hint::black_box(
                key.open_in_place(again, Aad::from(AAD), &mut buf)
                    .expect("open")
                    .len(),
            );
            1
        });
        out.extend(figures(name, len, seal, Some(pair)));
    }
    out
}
