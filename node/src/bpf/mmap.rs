//! Read-only views of `BPF_F_MMAPABLE` array maps: user space reads a
//! whole array as memory instead of with one `bpf(BPF_MAP_LOOKUP_ELEM)`
//! syscall per index (65 536 syscalls for the default backend array).
//!
//! Only reads go through the mapping; writes stay syscalls (they are few
//! and the kernel orders them). A value read while the kernel or another
//! process rewrites it may be torn, so callers use views for listing and
//! reconciling, where the agent itself is the only writer.

use std::{
    marker::PhantomData,
    os::fd::{AsFd, AsRawFd},
    path::Path,
    ptr::NonNull,
};

use aya::maps::{MapData, MapError};

use super::BpfError;

/// A mapped array of `T` (`T` is `#[repr(C)]`, every bit pattern valid).
pub struct MmapArray<T> {
    base: NonNull<u8>,
    bytes: usize,
    entries: u32,
    stride: usize,
    // Keeps the map (and so the mapping's object) alive.
    _map: MapData,
    _values: PhantomData<T>,
}

// SAFETY: the mapping is read-only shared memory owned by this value; it
// is only read (by value) through `get`, so sharing it is as safe as
// sharing a `&[u8]`.
unsafe impl<T> Send for MmapArray<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for MmapArray<T> {}

impl<T: aya::Pod> MmapArray<T> {
    /// Maps the array pinned at `path` (created with `BPF_F_MMAPABLE`).
    pub fn open(path: &Path, name: &'static str) -> Result<Self, BpfError> {
        let err = |source| BpfError::Map { name, source };
        let map = MapData::from_pin(path).map_err(err)?;
        let info = map.info().map_err(err)?;
        let value = info.value_size() as usize;
        if value != size_of::<T>() {
            return Err(err(MapError::InvalidValueSize {
                size: size_of::<T>(),
                expected: value,
            }));
        }
        // The kernel lays array values out rounded up to 8 bytes.
        let stride = value.div_ceil(8) * 8;
        let entries = info.max_entries();
        let page = 4096;
        let bytes = (stride * entries as usize).div_ceil(page).max(1) * page;
        // SAFETY: mapping a BPF array fd read-only and shared, at offset 0,
        // for no more than the kernel's size of the array's data; the
        // result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ,
                libc::MAP_SHARED,
                map.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(BpfError::Bpffs {
                path: format!("{} (mmap)", path.display()),
                source: std::io::Error::last_os_error(),
            });
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| BpfError::Bpffs {
            path: format!("{} (mmap)", path.display()),
            source: std::io::Error::other("mmap returned null"),
        })?;
        Ok(Self {
            base,
            bytes,
            entries,
            stride,
            _map: map,
            _values: PhantomData,
        })
    }

    /// The value at `index`, copied out; `None` past the end.
    pub fn get(&self, index: u32) -> Option<T> {
        if index >= self.entries {
            return None;
        }
        // SAFETY: `index < entries`, so the value lies inside the mapping;
        // `T` is plain data (every bit pattern valid); the read is
        // unaligned-safe and volatile (the kernel may write concurrently).
        Some(unsafe {
            self.base
                .as_ptr()
                .add(index as usize * self.stride)
                .cast::<T>()
                .read_volatile()
        })
    }

    /// Every `(index, value)` for which `keep` holds.
    pub fn collect(&self, keep: impl Fn(&T) -> bool) -> Vec<(u32, T)> {
        (0..self.entries)
            .filter_map(|i| self.get(i).map(|v| (i, v)))
            .filter(|(_, v)| keep(v))
            .collect()
    }
}

impl<T> Drop for MmapArray<T> {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region `open` mapped, once.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.bytes);
        }
    }
}
