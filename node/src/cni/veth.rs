//! The routed point-to-point link between the node and one pod, made,
//! checked and removed over rtnetlink (never by running `ip`):
//!
//! ```text
//!   node netns (the caller's)                 pod netns (CNI_NETNS)
//!   kc<13 hex>  10.244.0.1/32 (gateway)  ═══  eth0  10.244.0.7/32
//!   route 10.244.0.7/32 dev kc…               default via 10.244.0.1 dev eth0 onlink
//!   net.ipv4.conf.kc….forwarding = 1
//! ```
//!
//! The pod holds a /32, so everything it sends — to other pods too — goes
//! to the gateway, i.e. through the node-side veth: the place the eBPF
//! datapath will attach. Every node-side veth holds the same gateway
//! address, which answers the pod's ARP without proxy ARP. Forwarding is
//! switched on for the node-side veth only (IPv4 forwarding is decided by
//! the receiving device), never globally. Nothing here touches other
//! links, the host's routes or sysctls.
//!
//! The node side is configured from the calling thread (the runtime runs
//! the plugin in the node's network namespace); the pod side from a scoped
//! thread that entered the pod's namespace with `setns`, so its netlink
//! socket lives there.

use std::{
    fs::{self, File},
    future::Future,
    io,
    net::{IpAddr, Ipv4Addr},
    os::fd::AsRawFd,
    path::Path,
    thread,
};

use futures::TryStreamExt;
use nix::{
    sched::{CloneFlags, setns},
    sys::statfs::{NSFS_MAGIC, fstatfs},
};
use rtnetlink::{
    Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
    packet_route::{
        address::AddressAttribute,
        link::{InfoData, InfoVeth, LinkAttribute, LinkFlags, LinkMessage},
        route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope},
    },
};
use thiserror::Error;
use tracing::{debug, info};

#[derive(Debug, Error)]
pub enum VethError {
    #[error("{path}: {source}")]
    NetnsOpen {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a network namespace")]
    NotNetns { path: String },
    #[error("entering the pod's network namespace: {0}")]
    Enter(#[source] nix::Error),
    #[error("a thread inside the pod's network namespace panicked")]
    Panicked,
    #[error("starting the netlink runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error("opening a netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("{action}: {source}")]
    Netlink {
        action: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("link {0} vanished while being configured")]
    Vanished(String),
    #[error("writing sysctl {path}: {source}")]
    Sysctl {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl VethError {
    /// Whether the failure is about reaching the pod's namespace (rather
    /// than configuring links).
    pub fn is_netns(&self) -> bool {
        matches!(self, Self::Enter(_) | Self::Panicked)
    }
}

fn netlink(action: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> VethError {
    let action = action.into();
    move |source| VethError::Netlink { action, source }
}

/// The node-side veth's name for a container's interface: `kc` and 13 hex
/// digits of a stable hash (FNV-1a) of the container id and interface
/// name — 15 bytes, the kernel's limit; the same in every plugin version,
/// so a DEL finds what an older ADD made.
pub fn node_ifname(container_id: &str, ifname: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in container_id
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(ifname.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("kc{:013x}", hash >> 12)
}

/// What the pod's link should look like.
#[derive(Clone, Debug)]
pub struct Spec {
    pub node_ifname: String,
    pub pod_ifname: String,
    pub ip: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub mtu: u32,
}

/// The two ends' hardware addresses after [`setup`].
#[derive(Clone, Debug)]
pub struct Macs {
    pub node: String,
    pub pod: String,
}

/// Opens `path` and checks that it is a network namespace.
pub fn open_netns(path: &Path) -> Result<File, VethError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| VethError::NetnsOpen {
        path: shown.clone(),
        source,
    })?;
    match fstatfs(&file) {
        Ok(fs) if fs.filesystem_type() == NSFS_MAGIC => Ok(file),
        Ok(_) => Err(VethError::NotNetns { path: shown }),
        Err(e) => Err(VethError::NetnsOpen {
            path: shown,
            source: e.into(),
        }),
    }
}

/// Runs `f` with a netlink handle of the calling thread's namespace.
fn with_netlink<T, F, Fut>(f: F) -> Result<T, VethError>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T, VethError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(VethError::Runtime)?;
    runtime.block_on(async {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(VethError::Socket)?;
        tokio::spawn(connection);
        f(handle).await
    })
}

/// Runs `f` with a netlink handle inside the namespace `netns`, on a
/// scoped thread (the caller's thread never changes namespace).
fn in_netns<T, F, Fut>(netns: &File, f: F) -> Result<T, VethError>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T, VethError>>,
{
    thread::scope(|scope| {
        scope
            .spawn(|| {
                setns(netns, CloneFlags::CLONE_NEWNET).map_err(VethError::Enter)?;
                with_netlink(f)
            })
            .join()
            .unwrap_or(Err(VethError::Panicked))
    })
}

/// Sets the pod's loopback up (what the runtime's `loopback` plugin, run
/// before every network, asks for).
pub fn loopback_up(netns: &File) -> Result<(), VethError> {
    in_netns(netns, |handle| async move {
        let link = link_by_name(&handle, "lo")
            .await?
            .ok_or_else(|| VethError::Vanished("lo".to_owned()))?;
        handle
            .link()
            .change(LinkUnspec::new_with_index(link.header.index).up().build())
            .execute()
            .await
            .map_err(netlink("setting lo up in the pod".to_owned()))
    })
}

/// Creates the veth pair, moves its pod end into `netns` as
/// `spec.pod_ifname`, and configures addresses, routes and the forwarding
/// sysctl. A node-side link of the same name (left by an earlier ADD of
/// this container) is replaced. On failure the pair is removed again.
pub fn setup(netns: &File, spec: &Spec) -> Result<Macs, VethError> {
    let result = setup_inner(netns, spec);
    if result.is_err()
        && let Err(e) = teardown(&spec.node_ifname)
    {
        debug!(error = %e, "removing a half-made veth pair");
    }
    result
}

fn setup_inner(netns: &File, spec: &Spec) -> Result<Macs, VethError> {
    let node_mac = with_netlink(|handle| async move {
        if let Some(stale) = link_by_name(&handle, &spec.node_ifname).await? {
            info!(link = %spec.node_ifname, "replacing a node-side veth left by an earlier ADD");
            delete_link(&handle, stale.header.index, &spec.node_ifname).await?;
        }
        let peer = LinkUnspec::new_with_name(&spec.pod_ifname)
            .mtu(spec.mtu)
            .setns_by_fd(netns.as_raw_fd())
            .build();
        let veth = LinkMessageBuilder::<LinkVeth>::new(&spec.node_ifname, &spec.pod_ifname)
            .mtu(spec.mtu)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        handle
            .link()
            .add(veth)
            .execute()
            .await
            .map_err(netlink(format!(
                "creating veth {} with peer {} in the pod",
                spec.node_ifname, spec.pod_ifname
            )))?;
        let link = link_by_name(&handle, &spec.node_ifname)
            .await?
            .ok_or_else(|| VethError::Vanished(spec.node_ifname.clone()))?;
        let index = link.header.index;
        // Forwarding on this link only: IPv4 forwards what arrives on a
        // device whose own `forwarding` is on.
        write_sysctl(&spec.node_ifname, "forwarding", "1")?;
        handle
            .link()
            .change(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(netlink(format!("setting {} up", spec.node_ifname)))?;
        handle
            .address()
            .add(index, IpAddr::V4(spec.gateway), 32)
            .replace()
            .execute()
            .await
            .map_err(netlink(format!(
                "adding {}/32 to {}",
                spec.gateway, spec.node_ifname
            )))?;
        handle
            .route()
            .add(host_route(spec.ip, index))
            .replace()
            .execute()
            .await
            .map_err(netlink(format!(
                "adding the route {}/32 dev {}",
                spec.ip, spec.node_ifname
            )))?;
        Ok(mac(&link))
    })?;

    let pod_mac = in_netns(netns, |handle| async move {
        let link = link_by_name(&handle, &spec.pod_ifname)
            .await?
            .ok_or_else(|| VethError::Vanished(spec.pod_ifname.clone()))?;
        let index = link.header.index;
        handle
            .link()
            .change(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(netlink(format!(
                "setting {} up in the pod",
                spec.pod_ifname
            )))?;
        handle
            .address()
            .add(index, IpAddr::V4(spec.ip), 32)
            .replace()
            .execute()
            .await
            .map_err(netlink(format!(
                "adding {}/32 to {} in the pod",
                spec.ip, spec.pod_ifname
            )))?;
        let default = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(Ipv4Addr::UNSPECIFIED, 0)
            .gateway(spec.gateway)
            .output_interface(index)
            .onlink()
            .build();
        handle
            .route()
            .add(default)
            .replace()
            .execute()
            .await
            .map_err(netlink(format!(
                "adding the default route via {} in the pod",
                spec.gateway
            )))?;
        Ok(mac(&link))
    })?;
    Ok(Macs {
        node: node_mac,
        pod: pod_mac,
    })
}

fn host_route(ip: Ipv4Addr, index: u32) -> RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(ip, 32)
        .output_interface(index)
        .scope(RouteScope::Link)
        .build()
}

/// Removes the node-side veth (which takes its pod end with it). Returns
/// whether it existed; a missing link is not an error.
pub fn teardown(node_ifname: &str) -> Result<bool, VethError> {
    with_netlink(|handle| async move {
        match link_by_name(&handle, node_ifname).await? {
            Some(link) => {
                delete_link(&handle, link.header.index, node_ifname).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    })
}

/// Compares the live state with `spec`; `Ok(problems)` lists every
/// difference (empty when all is as ADD left it).
pub fn check(netns: &File, spec: &Spec) -> Result<Vec<String>, VethError> {
    let mut problems = with_netlink(|handle| async move {
        let mut problems = Vec::new();
        let Some(link) = link_by_name(&handle, &spec.node_ifname).await? else {
            problems.push(format!("node-side veth {} is missing", spec.node_ifname));
            return Ok(problems);
        };
        let index = link.header.index;
        check_link(&link, spec.mtu, &spec.node_ifname, &mut problems);
        if read_sysctl(&spec.node_ifname, "forwarding").as_deref() != Some("1") {
            problems.push(format!("forwarding is not on for {}", spec.node_ifname));
        }
        if !has_address(&handle, index, spec.gateway).await? {
            problems.push(format!(
                "{} does not hold the gateway {}/32",
                spec.node_ifname, spec.gateway
            ));
        }
        if !has_route(&handle, spec.ip, 32, None, index).await? {
            problems.push(format!(
                "no route {}/32 dev {} on the node",
                spec.ip, spec.node_ifname
            ));
        }
        Ok(problems)
    })?;
    problems.extend(in_netns(netns, |handle| async move {
        let mut problems = Vec::new();
        let Some(link) = link_by_name(&handle, &spec.pod_ifname).await? else {
            problems.push(format!(
                "interface {} is missing in the pod",
                spec.pod_ifname
            ));
            return Ok(problems);
        };
        let index = link.header.index;
        check_link(&link, spec.mtu, &spec.pod_ifname, &mut problems);
        if !has_address(&handle, index, spec.ip).await? {
            problems.push(format!(
                "{} in the pod does not hold {}/32",
                spec.pod_ifname, spec.ip
            ));
        }
        if !has_route(&handle, Ipv4Addr::UNSPECIFIED, 0, Some(spec.gateway), index).await? {
            problems.push(format!(
                "no default route via {} dev {} in the pod",
                spec.gateway, spec.pod_ifname
            ));
        }
        Ok(problems)
    })?);
    Ok(problems)
}

fn check_link(link: &LinkMessage, mtu: u32, name: &str, problems: &mut Vec<String>) {
    if !link.header.flags.contains(LinkFlags::Up) {
        problems.push(format!("{name} is down"));
    }
    let actual = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    });
    if actual != Some(mtu) {
        problems.push(format!("{name} has MTU {actual:?}, want {mtu}"));
    }
}

async fn link_by_name(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, VethError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
        Err(e) => Err(netlink(format!("looking up link {name}"))(e)),
    }
}

async fn delete_link(handle: &Handle, index: u32, name: &str) -> Result<(), VethError> {
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(()),
        Err(e) => Err(netlink(format!("deleting link {name}"))(e)),
    }
}

async fn has_address(handle: &Handle, index: u32, ip: Ipv4Addr) -> Result<bool, VethError> {
    let mut addresses = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    while let Some(address) = addresses
        .try_next()
        .await
        .map_err(netlink("listing addresses"))?
    {
        let holds = address.header.prefix_len == 32
            && address.attributes.iter().any(|a| {
                matches!(a, AddressAttribute::Address(IpAddr::V4(a)) | AddressAttribute::Local(IpAddr::V4(a)) if *a == ip)
            });
        if holds {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the main table routes `dst/prefix` out of link `index` (via
/// `gateway` when given).
async fn has_route(
    handle: &Handle,
    dst: Ipv4Addr,
    prefix: u8,
    gateway: Option<Ipv4Addr>,
    index: u32,
) -> Result<bool, VethError> {
    let mut routes = handle
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(route) = routes.try_next().await.map_err(netlink("listing routes"))? {
        let table = route
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Table(t) => Some(*t),
                _ => None,
            })
            .unwrap_or(u32::from(route.header.table));
        if table != u32::from(RouteHeader::RT_TABLE_MAIN)
            || route.header.destination_prefix_length != prefix
        {
            continue;
        }
        let mut route_dst = Ipv4Addr::UNSPECIFIED;
        let mut route_gw = None;
        let mut oif = None;
        for attribute in &route.attributes {
            match attribute {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => route_dst = *d,
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => route_gw = Some(*g),
                RouteAttribute::Oif(i) => oif = Some(*i),
                _ => {}
            }
        }
        if route_dst == dst && oif == Some(index) && (gateway.is_none() || route_gw == gateway) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno)
}

fn mac(link: &LinkMessage) -> String {
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(bytes) => Some(
                bytes
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// `/proc/sys/net/ipv4/conf/<link>/<key>` of the calling thread's
/// namespace (procfs resolves `net` by the opening thread).
fn sysctl_path(link: &str, key: &str) -> String {
    format!("/proc/sys/net/ipv4/conf/{link}/{key}")
}

fn write_sysctl(link: &str, key: &str, value: &str) -> Result<(), VethError> {
    let path = sysctl_path(link, key);
    fs::write(&path, value).map_err(|source| VethError::Sysctl { path, source })
}

fn read_sysctl(link: &str, key: &str) -> Option<String> {
    fs::read_to_string(sysctl_path(link, key))
        .ok()
        .map(|s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ifname_is_stable_short_and_distinct() {
        let a = node_ifname("0123456789abcdef", "eth0");
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("kc"));
        assert!(a[2..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, node_ifname("0123456789abcdef", "eth0"));
        assert_ne!(a, node_ifname("0123456789abcdef", "eth1"));
        assert_ne!(a, node_ifname("0123456789abcdee", "eth0"));
        // Pinned: DEL from a newer plugin must find what an older ADD made.
        assert_eq!(node_ifname("abc", "eth0"), "kc561a69de51a68");
    }
}
