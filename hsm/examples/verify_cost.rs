//! What checking every token signature costs, beside what the signature
//! itself costs, measured in one run on a throw-away SoftHSM2 token.
//!
//! ```sh
//! cargo run --release -p signet-hsm --example verify_cost [-- SIGNATURES]
//! ```
//!
//! For each key type: µs per raw token signature (`Token::sign_prepared`,
//! unverified, one caller), µs per verification of those signatures on the
//! host (`PublicKey::verifies`, one thread), and µs per verified signature
//! (`Token::sign`: the token makes it, the waiting thread checks it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use sha2::Digest;
use signet_hsm::{KeyAlgorithm, RsaHash, Token};
use signet_testkit::SoftHsm;

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("SIGNATURES must be a number"))
        .unwrap_or(2000);
    let hsm = SoftHsm::create("verify-cost");
    let token = Token::open(&hsm.token_config(1)).unwrap();
    let message = [0x5a_u8; 512];
    println!("key          n      sign_us  verify_us  verified_sign_us  verify/sign");
    for algorithm in KeyAlgorithm::ALL {
        let key = token
            .generate_key(&hsm.unique(&format!("cost-{algorithm}")), algorithm)
            .unwrap();
        // RSA signs two orders of magnitude slower: fewer rounds.
        let n = match algorithm {
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => (count / 20).max(10),
            _ => count,
        };
        let hash = RsaHash::Sha512;
        let input = match algorithm {
            KeyAlgorithm::EcdsaP256 => sha2::Sha256::digest(message).to_vec(),
            KeyAlgorithm::EcdsaP384 => sha2::Sha384::digest(message).to_vec(),
            _ => message.to_vec(),
        };
        let start = Instant::now();
        let signatures: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                token
                    .sign_prepared(&key, input.clone(), hash)
                    .wait()
                    .unwrap()
            })
            .collect();
        let sign_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;

        let start = Instant::now();
        for raw in &signatures {
            assert!(key.public_key().verifies(&message, raw, hash));
        }
        let verify_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;

        let start = Instant::now();
        for _ in 0..n {
            token.sign(&key, &message, hash).wait().unwrap();
        }
        let verified_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!(
            "{:<12} {n:<6} {sign_us:>8.1} {verify_us:>10.1} {verified_us:>17.1} {:>12.3}",
            algorithm.name(),
            verify_us / sign_us
        );
    }
}
