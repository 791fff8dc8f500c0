//! The three hashes of the solver, each its own newtype so that one is never
//! mistaken for another: [`VertexDigest`] (graph identity), [`CacheKey`]
//! (what a result is stored under) and [`ContentHash`] (what an op reads).
//!
//! All three are blake3. None of them is an OCI `sha256:` digest and nothing
//! here converts between them and one.

use std::fmt;

/// Domain separators: the same bytes hashed for two purposes never collide.
const DIGEST_DOMAIN: &[u8] = b"buildr-solver/vertex-digest/v1\0";
const DEFINITION_KEY_DOMAIN: &[u8] = b"buildr-solver/definition-key/v1\0";
const CONTENT_KEY_DOMAIN: &[u8] = b"buildr-solver/content-key/v1\0";

macro_rules! hash_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps raw hash bytes (e.g. read back from a cache index).
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The raw 32 bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lower-case hex, 64 characters.
            pub fn to_hex(&self) -> String {
                blake3::Hash::from_bytes(self.0).to_hex().to_string()
            }

            /// The first 12 hex characters, for humans.
            pub fn short(&self) -> String {
                let mut hex = self.to_hex();
                hex.truncate(12);
                hex
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }
    };
}

hash_newtype!(
    /// Identity of a vertex in one graph: blake3 over the op definition and
    /// the digests of its inputs, in order. Two vertices with the same digest
    /// are the same vertex and are merged when the graph is built.
    VertexDigest
);

hash_newtype!(
    /// The key a vertex's result is cached under.
    ///
    /// `definition key = blake3(op definition, input cache keys)`; when the op
    /// reads content (see [`Op::content_key`](crate::Op::content_key)) the
    /// final key is `blake3(definition key, content hash)`. Keys never include
    /// mtimes, wall-clock time, host paths or vertex locations: the solver feeds
    /// in only what ops return, and ops are responsible for keeping those out.
    CacheKey
);

hash_newtype!(
    /// A checksum an op computes over the content it reads (e.g. the files a
    /// `COPY` selects from the build context). Build one with
    /// [`ContentHash::of`] or [`ContentHasher`].
    ContentHash
);

impl VertexDigest {
    pub(crate) fn compute(definition: &[u8], inputs: &[VertexDigest]) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(DIGEST_DOMAIN);
        update_framed(&mut hasher, definition);
        update_len(&mut hasher, inputs.len());
        for input in inputs {
            hasher.update(&input.0);
        }
        Self(*hasher.finalize().as_bytes())
    }
}

impl CacheKey {
    /// The definition-level key: op definition plus the input keys, in order.
    pub(crate) fn definition(definition: &[u8], inputs: &[CacheKey]) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(DEFINITION_KEY_DOMAIN);
        update_framed(&mut hasher, definition);
        update_len(&mut hasher, inputs.len());
        for input in inputs {
            hasher.update(&input.0);
        }
        Self(*hasher.finalize().as_bytes())
    }

    /// The definition-level key with the op's content checksum mixed in.
    pub(crate) fn with_content(&self, content: &ContentHash) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(CONTENT_KEY_DOMAIN);
        hasher.update(&self.0);
        hasher.update(&content.0);
        Self(*hasher.finalize().as_bytes())
    }
}

impl ContentHash {
    /// Hashes one byte string.
    pub fn of(bytes: &[u8]) -> Self {
        let mut hasher = ContentHasher::new();
        hasher.update(bytes);
        hasher.finish()
    }
}

/// Incremental builder for a [`ContentHash`]. Every [`update`](Self::update)
/// is length-framed, so `["ab", "c"]` and `["a", "bc"]` hash differently.
#[derive(Debug, Clone, Default)]
pub struct ContentHasher(blake3::Hasher);

impl ContentHasher {
    /// An empty hasher.
    pub fn new() -> Self {
        Self(blake3::Hasher::new())
    }

    /// Adds one length-framed field.
    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        update_framed(&mut self.0, bytes);
        self
    }

    /// The checksum of every field added so far.
    pub fn finish(&self) -> ContentHash {
        ContentHash(*self.0.finalize().as_bytes())
    }
}

fn update_len(hasher: &mut blake3::Hasher, len: usize) {
    hasher.update(&(len as u64).to_le_bytes());
}

fn update_framed(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    update_len(hasher, bytes.len());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_separates_fields() {
        let mut a = ContentHasher::new();
        a.update(b"ab").update(b"c");
        let mut b = ContentHasher::new();
        b.update(b"a").update(b"bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn input_order_matters() {
        let x = CacheKey::definition(b"x", &[]);
        let y = CacheKey::definition(b"y", &[]);
        assert_ne!(
            CacheKey::definition(b"op", &[x, y]),
            CacheKey::definition(b"op", &[y, x])
        );
    }

    #[test]
    fn content_changes_key() {
        let def = CacheKey::definition(b"copy", &[]);
        let one = def.with_content(&ContentHash::of(b"one"));
        let two = def.with_content(&ContentHash::of(b"two"));
        assert_ne!(one, two);
        assert_ne!(one, def);
    }

    #[test]
    fn digest_and_key_domains_differ() {
        let digest = VertexDigest::compute(b"op", &[]);
        let key = CacheKey::definition(b"op", &[]);
        assert_ne!(digest.as_bytes(), key.as_bytes());
    }

    #[test]
    fn hex_is_64_lowercase_chars() {
        let hex = ContentHash::of(b"").to_hex();
        assert_eq!(hex.len(), 64);
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
    }
}
