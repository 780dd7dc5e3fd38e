//! The service-CIDR `unreachable` route: a VIP packet no program translated
//! is refused on the host instead of following the default route.

use std::{
    io::ErrorKind,
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
};

use anyhow::{Result, ensure};
use keelson_e2e::netns::{NetNs, VethPair};
use keelson_node::proxy::route;

#[test]
fn unreachable_route_refuses_vips_that_would_otherwise_follow_the_default_route() -> Result<()> {
    let node = NetNs::new()?;
    let upstream = NetNs::new()?;
    let veth = VethPair::new(
        &node,
        &upstream,
        Ipv4Addr::new(10, 214, 0, 1),
        Ipv4Addr::new(10, 214, 0, 2),
    )?;
    // The node's default route leads only into the upstream test netns.
    node.ip(&["route", "add", "default", "via", &veth.b_addr.to_string()])?;
    let cidr: ipnet::Ipv4Net = "10.96.0.0/12".parse()?;
    let vip = SocketAddrV4::new(Ipv4Addr::new(10, 96, 0, 10), 80);

    let outcome = node.enter(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let udp_connect = || UdpSocket::bind("0.0.0.0:0").and_then(|s| s.connect(vip));
        // Without the route, the VIP is routed out (to the upstream netns).
        let before = udp_connect().is_ok();
        rt.block_on(route::ensure_unreachable(cidr))?;
        rt.block_on(route::ensure_unreachable(cidr))?; // idempotent
        let installed = rt.block_on(route::has_unreachable(cidr))?;
        let refused = udp_connect().err().map(|e| e.kind());
        let tcp =
            std::net::TcpStream::connect_timeout(&vip.into(), std::time::Duration::from_secs(2))
                .err()
                .and_then(|e| e.raw_os_error());
        rt.block_on(route::remove_unreachable(cidr))?;
        let after = rt.block_on(route::has_unreachable(cidr))?;
        Ok((before, installed, refused, tcp, after))
    })?;
    let (before, installed, refused, tcp, after) = outcome;
    ensure!(
        before,
        "without the route the VIP should follow the default route"
    );
    ensure!(installed, "the unreachable route is not listed");
    ensure!(
        refused == Some(ErrorKind::HostUnreachable),
        "UDP connect to a VIP: {refused:?}"
    );
    ensure!(
        tcp == Some(libc::EHOSTUNREACH),
        "TCP connect to a VIP: errno {tcp:?}"
    );
    ensure!(!after, "the route survived its removal");
    Ok(())
}
