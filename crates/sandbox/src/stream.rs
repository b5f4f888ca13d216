//! Stream signing keys: create (the key material is answered once), list, revoke.
//!
//! A Worker that signs Stream tokens holds a key id and its PEM as two secrets; rotating them
//! safely is a matter of which keys exist while which pair is deployed, so the sandbox keeps the
//! keys (id, creation time from the sandbox clock, and a salted digest of the PEM: the material
//! itself is answered by `POST` and then forgotten, as on Cloudflare). The token route of a
//! declared behaviour ([`crate::workers::behaviour`]) checks a version's pair against them.
//! Unknown ids answer 10003 (not found).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::envelope::{ApiError, Reply};
use super::request::Call;
use super::state::{Account, new_tag};
use super::world::World;

/// One signing key as the sandbox remembers it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamKey {
    pub(crate) id: String,
    pub(crate) created: String,
    /// [`Account::secret_digest`] of the base64 PEM answered at creation.
    pub(crate) pem_digest: String,
}

/// `POST …/stream/keys`: a new key, its material in the answer and nowhere else.
pub(crate) fn create(world: &mut World) -> Result<Reply, ApiError> {
    let id = new_tag();
    let created = world.lifecycle.clock.now().to_string();
    let material = hex::encode(rand::random::<[u8; 48]>());
    let pem = base64(
        format!("-----BEGIN RSA PRIVATE KEY-----\n{material}\n-----END RSA PRIVATE KEY-----\n")
            .as_bytes(),
    );
    let jwk = base64(
        json!({"kid": id, "kty": "RSA", "alg": "RS256", "use": "sig", "d": material})
            .to_string()
            .as_bytes(),
    );
    let pem_digest = world.state.account.secret_digest(&pem);
    world.state.account.stream_keys.push(StreamKey {
        id: id.clone(),
        created: created.clone(),
        pem_digest,
    });
    world.save()?;
    Ok(Reply::ok(
        json!({"id": id, "pem": pem, "jwk": jwk, "created": created}),
    ))
}

/// `GET …/stream/keys`: id and creation time of every key.
pub(crate) fn list(world: &World) -> Result<Reply, ApiError> {
    let keys = world
        .state
        .account
        .stream_keys
        .iter()
        .map(|k| json!({"id": k.id, "created": k.created}))
        .collect();
    Ok(Reply::ok(Value::Array(keys)))
}

/// `DELETE …/stream/keys/{id}`: revoke one key.
pub(crate) fn delete(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let id = call.param(1);
    let keys = &mut world.state.account.stream_keys;
    let before = keys.len();
    keys.retain(|k| k.id != id);
    if keys.len() == before {
        return Err(ApiError::not_found(
            10003,
            format!("signing key {id} not found"),
        ));
    }
    world.save()?;
    Ok(Reply::ok(json!("ok")))
}

/// Whether `key_id_digest` and `pem_digest` (a version's secret digests) name an existing key
/// and that key's own material.
pub(crate) fn pair_matches(account: &Account, key_id_digest: &str, pem_digest: &str) -> bool {
    account
        .stream_keys
        .iter()
        .any(|k| account.secret_digest(&k.id) == key_id_digest && k.pem_digest == pem_digest)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as Stream's `pem`/`jwk` and `Tally-Signature` use.
pub(crate) fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }
}
