//! Lowering the process's address-space limit (`RLIMIT_AS`) for a while,
//! to make a thread's stack impossible to map.

/// Restores the address-space limit it was made from when dropped.
pub struct AddressSpaceLimit(libc::rlimit);

impl AddressSpaceLimit {
    /// Lowers the soft `RLIMIT_AS` to `bytes`.
    pub fn lower_to(bytes: usize) -> AddressSpaceLimit {
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `old` is a valid rlimit to write to.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut old) };
        assert_eq!(rc, 0, "getrlimit(RLIMIT_AS) failed");
        let new = libc::rlimit {
            rlim_cur: bytes as libc::rlim_t,
            rlim_max: old.rlim_max,
        };
        // SAFETY: a valid rlimit, lowering the soft limit only.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &new) };
        assert_eq!(rc, 0, "setrlimit(RLIMIT_AS) failed");
        AddressSpaceLimit(old)
    }
}

impl Drop for AddressSpaceLimit {
    fn drop(&mut self) {
        // SAFETY: restoring the limit read before.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &self.0) };
        assert_eq!(rc, 0, "could not restore RLIMIT_AS");
    }
}
