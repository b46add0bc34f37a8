//! Hash functions of the SCRAM mechanisms, and the cache of salted
//! passwords.
//!
//! `SaltedPassword = PBKDF2(HMAC-H, password, salt, i)` is all of a SCRAM
//! login's CPU cost on the client: thousands of HMACs, against three for
//! the rest of the exchange. It depends only on the password, the salt and
//! the iteration count, so a cache keyed by those three computes it once per
//! account and server for a password that every account shares. Servers
//! that store one salt per account, such as Prosody's `internal_hashed`,
//! still cost one PBKDF2 per account, but a bot that logs in to the same
//! account again pays nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Hash function H of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    /// H(data).
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    /// HMAC-H(key, data).
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
        match self {
            Hash::Sha1 => {
                let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Hash::Sha256 => {
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// PBKDF2 with HMAC-H, one block of output (the `Hi` function of
    /// RFC 5802 section 2.2).
    pub fn salt_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha1 => {
                pbkdf2::pbkdf2_hmac_array::<Sha1, 20>(password, salt, iterations).to_vec()
            }
            Hash::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
            }
        }
    }
}

/// Largest number of salted passwords one cache keeps. One entry is under
/// 200 bytes with a short password, so a full cache takes a few MiB.
/// Past the limit, new entries are computed but not kept.
pub const MAX_CACHED: usize = 100_000;

/// Key of one salted password: the inputs of PBKDF2.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SaltKey {
    hash: Hash,
    password: String,
    salt: Vec<u8>,
    iterations: u32,
}

/// Salted passwords computed so far, shared by the bots of a group slice.
#[derive(Default)]
pub struct SaltedPasswordCache {
    /// Guards the map only; PBKDF2 runs outside the lock, so two bots that
    /// miss on the same key at once both compute it.
    entries: Mutex<HashMap<SaltKey, Vec<u8>>>,
}

impl std::fmt::Debug for SaltedPasswordCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys contain passwords, so only the size is shown.
        f.debug_struct("SaltedPasswordCache")
            .field("entries", &self.len())
            .finish()
    }
}

impl SaltedPasswordCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of salted passwords kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the cached salted password, if there is one.
    pub fn get(&self, hash: Hash, password: &str, salt: &[u8], iterations: u32) -> Option<Vec<u8>> {
        let key = SaltKey {
            hash,
            password: password.to_owned(),
            salt: salt.to_vec(),
            iterations,
        };
        self.lock().get(&key).cloned()
    }

    /// Stores a salted password unless the cache is full.
    pub fn insert(
        &self,
        hash: Hash,
        password: &str,
        salt: &[u8],
        iterations: u32,
        salted: Vec<u8>,
    ) {
        let mut entries = self.lock();
        if entries.len() >= MAX_CACHED {
            return;
        }
        let key = SaltKey {
            hash,
            password: password.to_owned(),
            salt: salt.to_vec(),
            iterations,
        };
        entries.insert(key, salted);
    }

    /// Returns the salted password, computing and storing it on a miss.
    /// This runs PBKDF2 on the calling thread; async callers use
    /// [`SaltedPasswordCache::salt_password_async`].
    pub fn salt_password(
        &self,
        hash: Hash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Vec<u8> {
        if let Some(salted) = self.get(hash, password, salt, iterations) {
            return salted;
        }
        let salted = hash.salt_password(password.as_bytes(), salt, iterations);
        self.insert(hash, password, salt, iterations, salted.clone());
        salted
    }

    /// Like [`SaltedPasswordCache::salt_password`], but a miss runs PBKDF2
    /// on tokio's blocking pool, so that thousands of iterations do not
    /// stall the other bots on the runtime's worker threads.
    pub async fn salt_password_async(
        &self,
        hash: Hash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Vec<u8> {
        if let Some(salted) = self.get(hash, password, salt, iterations) {
            return salted;
        }
        let (owned_password, owned_salt) = (password.to_owned(), salt.to_vec());
        let computed = tokio::task::spawn_blocking(move || {
            hash.salt_password(owned_password.as_bytes(), &owned_salt, iterations)
        })
        .await;
        // The closure panics only if allocation fails, and the blocking pool
        // stops only with the runtime. If either happens, hash on this thread.
        let salted =
            computed.unwrap_or_else(|_| hash.salt_password(password.as_bytes(), salt, iterations));
        self.insert(hash, password, salt, iterations, salted.clone());
        salted
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SaltKey, Vec<u8>>> {
        // A poisoned lock only means a bot panicked while inserting; the
        // map is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6070 test vector 2 for PBKDF2-HMAC-SHA1 (c = 2).
    #[test]
    fn pbkdf2_sha1_vector() {
        let salted = Hash::Sha1.salt_password(b"password", b"salt", 2);
        let expected = [
            0xea, 0x6c, 0x01, 0x4d, 0xc7, 0x2d, 0x6f, 0x8c, 0xcd, 0x1e, 0xd9, 0x2a, 0xce, 0x1d,
            0x41, 0xf0, 0xd8, 0xde, 0x89, 0x57,
        ];
        assert_eq!(salted, expected);
    }

    /// A second lookup of the same inputs is served from the cache, and a
    /// different salt is a different entry.
    #[test]
    fn cache_keeps_one_entry_per_salt() {
        let cache = SaltedPasswordCache::new();
        let first = cache.salt_password(Hash::Sha256, "pw", b"salt-a", 16);
        assert_eq!(cache.len(), 1);
        let again = cache.salt_password(Hash::Sha256, "pw", b"salt-a", 16);
        assert_eq!(first, again);
        assert_eq!(cache.len(), 1);

        let other = cache.salt_password(Hash::Sha256, "pw", b"salt-b", 16);
        assert_ne!(first, other);
        assert_eq!(cache.len(), 2);

        let sha1 = cache.salt_password(Hash::Sha1, "pw", b"salt-a", 16);
        assert_eq!(sha1.len(), 20);
        assert_eq!(cache.len(), 3);
    }

    /// The cache's debug output shows its size, never a password.
    #[test]
    fn cache_debug_hides_passwords() {
        let cache = SaltedPasswordCache::new();
        cache.salt_password(Hash::Sha1, "hunter2", b"s", 1);
        let shown = format!("{cache:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains('1'));
    }
}
