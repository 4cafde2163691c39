//! Release signing: an ed25519 signature over a component's sha256 (the 32
//! bytes of the digest), by a key whose public half plugins.toml trusts
//! (`[signing] trusted_keys`). Keys and signatures travel as hex.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

fn bytes32(what: &str, hex_text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(hex_text.trim()).map_err(|e| format!("{what}: not hex: {e}"))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| format!("{what}: expected 32 bytes (64 hex digits)"))
}

/// A public key as plugins.toml lists it, checked.
pub fn parse_public_key(hex_text: &str) -> Result<VerifyingKey, String> {
    let bytes = bytes32("trusted key", hex_text)?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("trusted key {hex_text}: {e}"))
}

/// A new key pair from 32 random bytes: `(secret, public)`, both hex.
pub fn keypair_from_seed(seed: [u8; 32]) -> (String, String) {
    let key = SigningKey::from_bytes(&seed);
    (hex::encode(key.to_bytes()), hex::encode(key.verifying_key().to_bytes()))
}

/// The public key (hex) of a secret key (hex).
pub fn public_key_of(secret_hex: &str) -> Result<String, String> {
    let key = SigningKey::from_bytes(&bytes32("secret key", secret_hex)?);
    Ok(hex::encode(key.verifying_key().to_bytes()))
}

/// Signs a component's sha256 (hex) with a secret key (hex); the signature in hex.
pub fn sign(secret_hex: &str, sha256_hex: &str) -> Result<String, String> {
    let key = SigningKey::from_bytes(&bytes32("secret key", secret_hex)?);
    let digest = bytes32("sha256", sha256_hex)?;
    Ok(hex::encode(key.sign(&digest).to_bytes()))
}

/// The trusted key (hex) whose signature `signature_hex` is over `sha256_hex`.
pub fn verify(trusted_keys: &[String], sha256_hex: &str, signature_hex: &str) -> Result<String, String> {
    let digest = bytes32("sha256", sha256_hex)?;
    let raw = hex::decode(signature_hex.trim()).map_err(|e| format!("signature: not hex: {e}"))?;
    let raw = <[u8; 64]>::try_from(raw.as_slice()).map_err(|_| "signature: expected 64 bytes".to_string())?;
    let signature = Signature::from_bytes(&raw);
    for key in trusted_keys {
        if parse_public_key(key)?.verify(&digest, &signature).is_ok() {
            return Ok(key.clone());
        }
    }
    Err("bad signature: no trusted key signed this component".to_string())
}

/// Whether a component may load: with no trusted keys, anything may; with
/// some, it needs a signature by one of them unless its slot allows
/// unsigned builds. The key that signed it, if one did.
pub fn check(
    trusted_keys: &[String],
    allow_unsigned: bool,
    sha256_hex: &str,
    signature_hex: Option<&str>,
) -> Result<Option<String>, String> {
    if trusted_keys.is_empty() {
        return Ok(None);
    }
    match signature_hex {
        Some(signature) => verify(trusted_keys, sha256_hex, signature).map(Some),
        None if allow_unsigned => Ok(None),
        None => Err("unsigned: plugins.toml lists trusted keys and this slot does not allow unsigned builds".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_its_key_and_digest() -> Result<(), String> {
        let (secret, public) = keypair_from_seed([7; 32]);
        let (_, other) = keypair_from_seed([8; 32]);
        let sha = "ab".repeat(32);
        let signature = sign(&secret, &sha)?;
        assert_eq!(verify(std::slice::from_ref(&public), &sha, &signature)?, public);
        assert!(verify(std::slice::from_ref(&other), &sha, &signature).is_err());
        assert!(verify(std::slice::from_ref(&public), &"cd".repeat(32), &signature).is_err());
        assert_eq!(check(&[], false, &sha, None)?, None);
        assert!(check(std::slice::from_ref(&other), false, &sha, None).is_err());
        assert_eq!(check(&[other], true, &sha, None)?, None);
        Ok(())
    }
}
