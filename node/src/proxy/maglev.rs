//! Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
//! Software Network Load Balancer", NSDI 2016, §3.4), as Cilium uses it for
//! north-south traffic: every backend gets a permutation of the `M` table
//! slots from two hashes of its identity, and the backends take turns
//! claiming their next free preferred slot until the table is full. A flow's
//! hash modulo `M` picks a slot, the slot names the backend.
//!
//! Properties the tests check: every backend owns ⌊M/N⌋ or ⌈M/N⌉ slots; the
//! table depends only on the backend set and `M` (not on the order given, the
//! process or the Rust version: the hash is implemented here, never std's
//! `DefaultHasher`); removing or adding one backend moves few flows between
//! the other backends.
//!
//! Owns the table computation only: pure functions, no I/O. Writing tables
//! into BPF maps belongs to `proxy::maps`.

use std::net::IpAddr;

use thiserror::Error;

use super::model::Backend;

/// Default table size `M` (Cilium's default too): prime, and more than
/// 100 × N for up to 163 backends.
pub const DEFAULT_TABLE_SIZE: usize = 16_381;

/// The table sizes Cilium offers (`--bpf-lb-maglev-table-size`): primes
/// roughly doubling. Any prime works with [`table`]; these are convenient.
pub const TABLE_SIZES: [usize; 10] = [
    251, 509, 1_021, 2_039, 4_093, 8_191, 16_381, 32_749, 65_521, 131_071,
];

/// The identity of a backend for hashing: address and port. Two backends
/// with the same address and port are the same backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendKey {
    pub ip: IpAddr,
    pub port: u16,
}

impl From<&Backend> for BackendKey {
    fn from(backend: &Backend) -> Self {
        Self {
            ip: backend.ip,
            port: backend.port,
        }
    }
}

impl BackendKey {
    /// The bytes hashed: a family tag, the address in network order, then
    /// the port big-endian. Part of the table's stable definition.
    fn encode(&self, out: &mut Vec<u8>) {
        match self.ip {
            IpAddr::V4(v4) => {
                out.push(4);
                out.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                out.push(6);
                out.extend_from_slice(&v6.octets());
            }
        }
        out.extend_from_slice(&self.port.to_be_bytes());
    }
}

/// Why a table size is unsuitable.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MaglevError {
    #[error("Maglev table size {0} is not a prime number")]
    NotPrime(usize),
    #[error(
        "Maglev table size {m} is too small for {backends} backends: it must exceed 100 × N = {min}"
    )]
    TooSmall {
        m: usize,
        backends: usize,
        min: usize,
    },
}

/// Checks that `m` is a prime larger than 100 × `backends`: the Maglev
/// paper's condition for a balanced table with little disruption. [`table`]
/// works with any `m` (it never loops forever nor panics), but only a table
/// size passing this check has the documented properties.
pub fn check_table_size(m: usize, backends: usize) -> Result<(), MaglevError> {
    if !is_prime(m) {
        return Err(MaglevError::NotPrime(m));
    }
    let min = backends.saturating_mul(100);
    if m <= min {
        return Err(MaglevError::TooSmall { m, backends, min });
    }
    Ok(())
}

/// Trial division; table sizes are small (≤ 2^17 in practice).
pub fn is_prime(n: usize) -> bool {
    if n < 2 {
        return false;
    }
    if n < 4 {
        return true;
    }
    if n.is_multiple_of(2) || n.is_multiple_of(3) {
        return false;
    }
    let mut d = 5;
    while d <= n / d {
        if n.is_multiple_of(d) || n.is_multiple_of(d + 2) {
            return false;
        }
        d += 6;
    }
    true
}

/// Builds the lookup table of size `m`: entry `i` is the index (into
/// `backends`) of the backend owning slot `i`. A flow with hash `h` goes to
/// `backends[table[h % m]]`.
///
/// The result depends on the backends' identities, not on their order in
/// the slice beyond the indices it returns: the same set in another order
/// yields the same backend in every slot. Duplicate keys are tolerated (the
/// first one wins every slot of that identity). Empty `backends` or `m == 0`
/// give an empty table.
pub fn table(backends: &[BackendKey], m: usize) -> Vec<u32> {
    if backends.is_empty() || m == 0 {
        return Vec::new();
    }
    // Visit backends in identity order so the table does not depend on the
    // caller's order; map back to the caller's indices at the end.
    let mut order: Vec<usize> = (0..backends.len()).collect();
    order.sort_by_key(|&i| (backends[i], i));
    order.dedup_by_key(|i| backends[*i]);

    let mut perms: Vec<Permutation> = order
        .iter()
        .map(|&i| Permutation::new(&backends[i], m))
        .collect();
    const EMPTY: u32 = u32::MAX;
    let mut entries = vec![EMPTY; m];
    let mut filled = 0usize;
    'fill: loop {
        for (rank, perm) in perms.iter_mut().enumerate() {
            // Each permutation is a full cycle over 0..m, and fewer than m
            // slots are filled here, so a free slot is always found.
            let slot = loop {
                let candidate = perm.next_slot();
                if entries[candidate] == EMPTY {
                    break candidate;
                }
            };
            // Indices fit: a slice of more than 2^32 backends cannot exist in memory.
            entries[slot] = order[rank] as u32;
            filled += 1;
            if filled == m {
                break 'fill;
            }
        }
    }
    entries
}

/// The slot sequence `offset, offset + skip, offset + 2·skip, … (mod m)` of
/// one backend.
struct Permutation {
    next: usize,
    skip: usize,
    m: usize,
}

impl Permutation {
    fn new(key: &BackendKey, m: usize) -> Self {
        let mut bytes = Vec::with_capacity(19);
        key.encode(&mut bytes);
        let h1 = hash64(&bytes, SEED_OFFSET);
        let h2 = hash64(&bytes, SEED_SKIP);
        let m64 = m as u64;
        let offset = (h1 % m64) as usize;
        let mut skip = if m > 1 {
            (h2 % (m64 - 1)) as usize + 1
        } else {
            1
        };
        // For a prime m every skip in 1..m is coprime with m. Other sizes
        // would give short cycles (and an endless fill): move to the next
        // coprime skip so the function stays total.
        while gcd(skip, m) != 1 {
            skip += 1;
        }
        Self {
            next: offset,
            skip,
            m,
        }
    }

    fn next_slot(&mut self) -> usize {
        let slot = self.next;
        self.next = (self.next + self.skip) % self.m;
        slot
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Seeds of the two hashes (arbitrary, fixed forever: they define the table).
const SEED_OFFSET: u64 = 0x6b65_656c_736f_6e31; // "keelson1"
const SEED_SKIP: u64 = 0x6b65_656c_736f_6e32; // "keelson2"

/// A stable 64-bit hash: FNV-1a over the seed's bytes then the data,
/// finished with murmur3's `fmix64` avalanche so nearby keys (addresses
/// differing in one bit) spread over the whole range. Fixed forever: the
/// table, shared by every node, depends on it.
pub fn hash64(data: &[u8], seed: u64) -> u64 {
    fmix64(fnv1a64(&seed.to_le_bytes(), fnv1a64(data, FNV_OFFSET)))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 continuing from `state` (start with [`FNV_OFFSET`]).
fn fnv1a64(data: &[u8], mut state: u64) -> u64 {
    for &byte in data {
        state ^= u64::from(byte);
        state = state.wrapping_mul(FNV_PRIME);
    }
    state
}

/// murmur3's 64-bit finaliser.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[cfg(test)]
mod tests {
    use std::{
        collections::HashMap,
        net::{Ipv4Addr, Ipv6Addr},
    };

    use super::*;

    fn key(i: u32) -> BackendKey {
        BackendKey {
            ip: IpAddr::V4(Ipv4Addr::from(0x0af4_0000 + i)), // 10.244.x.y
            port: 8080,
        }
    }

    fn keys(n: u32) -> Vec<BackendKey> {
        (1..=n).map(key).collect()
    }

    /// Synthetic flow hashes: the 5-tuples of many clients to one VIP,
    /// hashed with the same function the datapath could use.
    fn flow_hashes(count: u32) -> Vec<u64> {
        (0..count)
            .map(|i| {
                let mut tuple = Vec::with_capacity(13);
                tuple.extend_from_slice(&(0xc000_0000u32 + i / 7).to_be_bytes()); // src ip
                tuple.extend_from_slice(&[10, 96, 0, 10]); // dst ip
                tuple.extend_from_slice(&(1024 + (i % 7) as u16 * 9000).to_be_bytes());
                tuple.extend_from_slice(&80u16.to_be_bytes());
                tuple.push(6);
                hash64(&tuple, 0)
            })
            .collect()
    }

    fn owner(table: &[u32], backends: &[BackendKey], flow: u64) -> BackendKey {
        backends[table[(flow % table.len() as u64) as usize] as usize]
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV reference (isthe.com/chongo/tech/comp/fnv).
        assert_eq!(fnv1a64(b"", FNV_OFFSET), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a", FNV_OFFSET), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar", FNV_OFFSET), 0x85944171f73967e8);
    }

    #[test]
    fn hash_and_table_are_pinned() {
        // Every node must compute the same table, across releases: these
        // values may never change (a change reshuffles every flow on upgrade).
        // They were cross-checked against an independent Python
        // implementation of the same hash and fill.
        assert_eq!(hash64(b"", 0), fmix64(fnv1a64(&[0; 8], FNV_OFFSET)));
        assert_eq!(hash64(b"10.244.0.1:8080", 1), 0x2de2_359c_908e_a089);
        let t = table(&keys(3), 307);
        assert_eq!(&t[..16], &[0, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 2, 1]);
    }

    #[test]
    fn every_slot_is_filled_and_backends_are_balanced() {
        for n in [1u32, 2, 3, 10, 100, 163] {
            let backends = keys(n);
            let t = table(&backends, DEFAULT_TABLE_SIZE);
            assert_eq!(t.len(), DEFAULT_TABLE_SIZE);
            let mut counts = vec![0usize; n as usize];
            for &e in &t {
                counts[e as usize] += 1;
            }
            let (min, max) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
            // Backends take turns, so the counts differ by at most one.
            assert!(max - min <= 1, "n={n}: min {min}, max {max}");
            assert_eq!(min, DEFAULT_TABLE_SIZE / n as usize, "n={n}");
        }
    }

    #[test]
    fn table_is_deterministic_and_independent_of_input_order() {
        let backends = keys(10);
        let a = table(&backends, DEFAULT_TABLE_SIZE);
        assert_eq!(a, table(&backends, DEFAULT_TABLE_SIZE));
        let mut reversed = backends.clone();
        reversed.reverse();
        let b = table(&reversed, DEFAULT_TABLE_SIZE);
        for slot in 0..DEFAULT_TABLE_SIZE {
            assert_eq!(backends[a[slot] as usize], reversed[b[slot] as usize]);
        }
    }

    #[test]
    fn removing_one_of_ten_backends_keeps_99_percent_of_other_flows() {
        let before_set = keys(10);
        let before = table(&before_set, DEFAULT_TABLE_SIZE);
        let flows = flow_hashes(100_000);
        for removed in 0..before_set.len() {
            let mut after_set = before_set.clone();
            let gone = after_set.remove(removed);
            let after = table(&after_set, DEFAULT_TABLE_SIZE);
            let (mut kept, mut moved, mut of_removed) = (0u32, 0u32, 0u32);
            for &flow in &flows {
                let old = owner(&before, &before_set, flow);
                if old == gone {
                    of_removed += 1;
                    continue;
                }
                if owner(&after, &after_set, flow) == old {
                    kept += 1;
                } else {
                    moved += 1;
                }
            }
            let share = f64::from(kept) / f64::from(kept + moved);
            assert!(
                share >= 0.99,
                "removing backend {removed}: {moved} of {} flows of other backends moved ({:.3}% kept)",
                kept + moved,
                share * 100.0
            );
            println!(
                "removed backend {removed}: {:.3}% of other backends' flows kept",
                share * 100.0
            );
            // The removed backend's flows were about a tenth of all.
            assert!((8_000..12_000).contains(&of_removed), "{of_removed}");
        }
    }

    #[test]
    fn adding_a_backend_moves_little_beyond_its_new_share() {
        let before_set = keys(10);
        let before = table(&before_set, DEFAULT_TABLE_SIZE);
        let mut after_set = before_set.clone();
        let added = key(11);
        after_set.push(added);
        let after = table(&after_set, DEFAULT_TABLE_SIZE);
        let flows = flow_hashes(100_000);
        let (mut to_new, mut between_old) = (0u32, 0u32);
        for &flow in &flows {
            let old = owner(&before, &before_set, flow);
            let new = owner(&after, &after_set, flow);
            if new == added {
                to_new += 1;
            } else if new != old {
                between_old += 1;
            }
        }
        // The new backend takes ≈ 1/11 of the flows, and flows that stay on
        // old backends almost never switch between them.
        println!(
            "added an 11th backend: {to_new} flows to it, {between_old} moved between old ones"
        );
        assert!((7_500..10_700).contains(&to_new), "{to_new}");
        let others = flows.len() as u32 - to_new;
        assert!(
            f64::from(between_old) / f64::from(others) <= 0.01,
            "{between_old} of {others} flows moved between existing backends"
        );
    }

    #[test]
    fn degenerate_inputs_never_panic_or_hang() {
        assert!(table(&[], DEFAULT_TABLE_SIZE).is_empty());
        assert!(table(&keys(3), 0).is_empty());
        assert_eq!(table(&keys(3), 1).len(), 1);
        // Non-prime sizes still fill the whole table.
        for m in [2, 4, 100, 1_000, 65_536] {
            let t = table(&keys(7), m);
            assert_eq!(t.len(), m);
            assert!(t.iter().all(|&e| e < 7));
        }
        // More backends than slots: every slot taken, by distinct backends.
        let t = table(&keys(300), 251);
        let mut seen = t.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 251);
        // Duplicates: one identity, one owner.
        let dup = vec![key(1), key(2), key(1)];
        let t = table(&dup, 251);
        assert!(t.iter().all(|&e| e == 0 || e == 1));
    }

    #[test]
    fn ipv6_and_ports_are_part_of_the_identity() {
        let a = BackendKey {
            ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
            port: 80,
        };
        let b = BackendKey { port: 81, ..a };
        let c = BackendKey {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 80,
        };
        let mut offsets = HashMap::new();
        for k in [a, b, c] {
            let p = Permutation::new(&k, DEFAULT_TABLE_SIZE);
            offsets.insert((p.next, p.skip), k);
        }
        assert_eq!(offsets.len(), 3);
    }

    #[test]
    fn table_sizes_are_checked() {
        for m in TABLE_SIZES {
            assert!(is_prime(m), "{m}");
        }
        assert!(is_prime(DEFAULT_TABLE_SIZE));
        assert_eq!(check_table_size(DEFAULT_TABLE_SIZE, 163), Ok(()));
        assert_eq!(
            check_table_size(DEFAULT_TABLE_SIZE, 164),
            Err(MaglevError::TooSmall {
                m: DEFAULT_TABLE_SIZE,
                backends: 164,
                min: 16_400
            })
        );
        assert_eq!(
            check_table_size(16_384, 1),
            Err(MaglevError::NotPrime(16_384))
        );
        assert!(!is_prime(0) && !is_prime(1) && is_prime(2) && is_prime(3));
        assert!(!is_prime(25) && !is_prime(49) && is_prime(65_521));
    }

    #[test]
    fn backend_key_comes_from_a_model_backend() {
        let b = Backend {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: 53,
            state: super::super::model::BackendState::Active,
            node_name: None,
        };
        assert_eq!(
            BackendKey::from(&b),
            BackendKey {
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                port: 53
            }
        );
    }
}
