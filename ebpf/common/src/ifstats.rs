//! Per-interface ingress counters (the `ifstats` TC classifier).

/// Name of the per-CPU hash map keyed by interface index (`u32`) whose
/// values are [`IfCounters`].
pub const MAP_NAME: &str = "IF_STATS";
/// Name of the TC ingress classifier that fills [`MAP_NAME`].
pub const PROGRAM_NAME: &str = "ifstats_ingress";
/// Capacity of [`MAP_NAME`]: interfaces tracked at once.
pub const MAX_INTERFACES: u32 = 1024;

/// Packets and bytes seen on one interface's ingress, on one CPU.
///
/// User space sums the per-CPU values of a key to get the interface total.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfCounters {
    pub packets: u64,
    pub bytes: u64,
}

impl IfCounters {
    /// Adds another CPU's (or interval's) counters to these.
    pub fn merge(&mut self, other: &IfCounters) {
        self.packets = self.packets.wrapping_add(other.packets);
        self.bytes = self.bytes.wrapping_add(other.bytes);
    }
}

// SAFETY: `IfCounters` is `#[repr(C)]`, `Copy`, made only of `u64`s and has
// no padding, so any bit pattern the kernel hands back is a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for IfCounters {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_two_u64_without_padding() {
        assert_eq!(core::mem::size_of::<IfCounters>(), 16);
        assert_eq!(core::mem::align_of::<IfCounters>(), 8);
    }

    #[test]
    fn merge_sums_and_wraps() {
        let mut a = IfCounters {
            packets: 1,
            bytes: u64::MAX,
        };
        a.merge(&IfCounters {
            packets: 2,
            bytes: 3,
        });
        assert_eq!(
            a,
            IfCounters {
                packets: 3,
                bytes: 2
            }
        );
    }
}
