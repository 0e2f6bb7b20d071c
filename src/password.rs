//! Operator passwords: the argon2id hash `rustircd --mkpasswd` prints for an oper block, and
//! the check OPER runs against a block's hash (argon2, bcrypt, or plain text where allowed).
//! Pure functions: OPER's guards around the check (budgets, queue, gate) are in
//! `commands::oper::limit`.

/// An argon2id hash of a password, with a fresh salt.
pub fn hash(password: &str) -> String {
    use argon2::password_hash::{rand_core::OsRng, SaltString};
    use argon2::PasswordHasher;
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 hashing").to_string()
}

/// argon2 or bcrypt by the hash's prefix; plain text only where the oper block allows it.
pub fn check(hash: &str, password: &str, plain_ok: bool) -> bool {
    if hash.starts_with("$argon2") {
        return verify_argon2(hash, password).unwrap_or(false);
    }
    if hash.starts_with("$2") {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    plain_ok && !hash.is_empty() && constant_time_eq(hash.as_bytes(), password.as_bytes())
}

/// `argon2::PasswordVerifier::verify_password`, with the working memory in a mapping of its
/// own (see [`Mapped`]) instead of a `Vec`. `None`: a malformed hash.
fn verify_argon2(hash: &str, password: &str) -> Option<bool> {
    use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
    let h = PasswordHash::new(hash).ok()?;
    let (salt, expected) = (h.salt?, h.hash?);
    let params = Params::try_from(&h).ok()?;
    let algorithm = Algorithm::try_from(h.algorithm).ok()?;
    let version = h.version.map(Version::try_from).transpose().ok()?.unwrap_or_default();
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).ok()?;
    let mut memory = Mapped::blocks(params.block_count())?;
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory).ok()?;
    Some(constant_time_eq(&out, expected.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Zeroed memory of its own mapping, unmapped on drop: argon2's working memory. A 19–64 MiB
/// `Vec` freed on a blocking thread stayed in that thread's glibc arena (measured: four threads
/// kept 19 MiB each, and `malloc_trim(0)` did not release them: it does not shrink the top of
/// a thread's arena); an unmapped region is back with the system at once.
struct Mapped {
    ptr: std::ptr::NonNull<argon2::Block>,
    len: usize,
}

impl Mapped {
    /// `len` zeroed blocks; `None` when the system refuses the mapping.
    fn blocks(len: usize) -> Option<Mapped> {
        let bytes = len.checked_mul(std::mem::size_of::<argon2::Block>())?.max(1);
        // SAFETY: a private anonymous mapping at an address of the kernel's choosing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        // Page-aligned, so aligned for a block (64 bytes).
        Some(Mapped { ptr: std::ptr::NonNull::new(p.cast())?, len })
    }
}

impl AsMut<[argon2::Block]> for Mapped {
    fn as_mut(&mut self) -> &mut [argon2::Block] {
        // SAFETY: `len` blocks of zeroed (valid: a block is plain integers), exclusively owned
        // memory that lives as long as `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        let bytes = (self.len * std::mem::size_of::<argon2::Block>()).max(1);
        // SAFETY: the mapping made in `blocks`, unmapped once.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes() {
        let h = hash("hunter2");
        assert!(h.starts_with("$argon2id$"));
        assert!(check(&h, "hunter2", false));
        assert!(!check(&h, "hunter3", false));
        let b = bcrypt::hash("pw", 4).unwrap();
        assert!(check(&b, "pw", false));
        assert!(!check("plain", "plain", false), "plain text refused unless allowed");
        assert!(check("plain", "plain", true));
        assert!(!check("plain", "plai", true));
    }

    #[test]
    fn argon2_variants_and_parameters_verify_as_the_crate_does() {
        use argon2::password_hash::{rand_core::OsRng, SaltString};
        use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
        for (alg, version, lanes, len) in [
            (Algorithm::Argon2id, Version::V0x13, 1, 32),
            (Algorithm::Argon2i, Version::V0x13, 2, 16),
            (Algorithm::Argon2d, Version::V0x10, 3, 64),
        ] {
            let params = Params::new(64, 2, lanes, Some(len)).unwrap();
            let salt = SaltString::generate(&mut OsRng);
            let h = Argon2::new(alg, version, params).hash_password(b"pw", &salt).unwrap().to_string();
            assert_eq!(verify_argon2(&h, "pw"), Some(true), "{h}");
            assert_eq!(verify_argon2(&h, "pX"), Some(false), "{h}");
        }
        assert_eq!(verify_argon2("$argon2id$v=19$m=64,t=2,p=1$broken", "pw"), None);
    }

    #[test]
    fn mapped_blocks_are_zeroed_and_writable() {
        let mut m = Mapped::blocks(3).unwrap();
        let b = m.as_mut();
        assert_eq!(b.len(), 3);
        assert!(b[2].as_ref().iter().all(|&w| w == 0));
        b[2].as_mut()[127] = 7;
        assert_eq!(m.as_mut()[2].as_ref()[127], 7);
    }
}
