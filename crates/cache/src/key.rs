//! Blake3 record keys, a type of their own so they never pass for OCI
//! digests, nor for the solver's cache keys.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A blake3 record key (`blake3:<64 hex>`): names a record in the store.
/// The engine derives one from a build step's solver cache key (salted per
/// cache scope), from a layer and its compression, or from a COPY's inputs;
/// the store itself only names records by it. The one cache key of the
/// workspace is the solver's (`buildr_solver::CacheKey`); the engine's
/// `BuildCache::store_key` is the one place one becomes a record key.
///
/// It is deliberately not convertible to or from [`crate::Digest`]: a key
/// says how a result was produced, a digest says what bytes it has.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKey([u8; 32]);

impl RecordKey {
    /// The key of `bytes`.
    pub fn of(bytes: &[u8]) -> RecordKey {
        RecordKey(*blake3::hash(bytes).as_bytes())
    }

    /// From raw hash bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> RecordKey {
        RecordKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lower-case hex digits, without the `blake3:` prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses a bare 64-hex-digit string (as found in record file names).
    pub fn from_hex(hex_str: &str) -> Result<RecordKey, Error> {
        let err = |reason| Error::InvalidRecordKey {
            input: hex_str.chars().take(100).collect(),
            reason,
        };
        if hex_str.len() != 64 {
            return Err(err("expected 64 hex digits"));
        }
        if hex_str.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err("hex digits must be lower-case"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_str, &mut out).map_err(|_| err("not hex"))?;
        Ok(RecordKey(out))
    }
}

impl FromStr for RecordKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<RecordKey, Error> {
        match s.strip_prefix("blake3:") {
            Some(hex_str) => RecordKey::from_hex(hex_str).map_err(|e| match e {
                Error::InvalidRecordKey { reason, .. } => Error::InvalidRecordKey {
                    input: s.chars().take(100).collect(),
                    reason,
                },
                other => other,
            }),
            None => Err(Error::InvalidRecordKey {
                input: s.chars().take(100).collect(),
                reason: "missing blake3: prefix",
            }),
        }
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blake3:{}", self.hex())
    }
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordKey({self})")
    }
}

impl serde::Serialize for RecordKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RecordKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RecordKey, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental blake3 that yields a [`RecordKey`].
#[derive(Debug, Default, Clone)]
pub struct KeyHasher(blake3::Hasher);

impl KeyHasher {
    pub fn new() -> KeyHasher {
        KeyHasher(blake3::Hasher::new())
    }

    pub fn update(&mut self, bytes: &[u8]) -> &mut KeyHasher {
        self.0.update(bytes);
        self
    }

    pub fn finish(&self) -> RecordKey {
        RecordKey(*self.0.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        let key = RecordKey::of(b"");
        let s = key.to_string();
        // blake3 of the empty input, from the blake3 reference test vectors.
        assert_eq!(
            s,
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(s.parse::<RecordKey>().unwrap(), key);
        let mut hasher = KeyHasher::new();
        hasher.update(b"ab").update(b"c");
        assert_eq!(hasher.finish(), RecordKey::of(b"abc"));
        assert!(
            format!("sha256:{}", key.hex())
                .parse::<RecordKey>()
                .is_err()
        );
        assert!("blake3:zz".parse::<RecordKey>().is_err());
        assert!(RecordKey::from_hex(&"A".repeat(64)).is_err());
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<RecordKey>(&json).unwrap(), key);
    }
}
