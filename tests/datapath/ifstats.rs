//! The `ifstats` TC ingress classifier counts real traffic: two namespaces
//! joined by a veth pair, the program attached inside one of them, 100 UDP
//! datagrams sent across.

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use keelson_e2e::{
    bpffs::PinDir,
    netns::{NetNs, VethPair},
};
use keelson_ebpf_common::ifstats::MAP_NAME;
use keelson_node::bpf::ifstats::{self, IfStats};

const DATAGRAMS: u64 = 100;
const PAYLOAD: &[u8] = b"keelson ifstats datagram";
const PORT: u16 = 40_000;

#[test]
fn ifstats_counts_udp_datagrams_across_a_veth() -> Result<()> {
    let sender_ns = NetNs::new()?;
    let receiver_ns = NetNs::new()?;
    let veth = VethPair::new(
        &sender_ns,
        &receiver_ns,
        Ipv4Addr::new(10, 213, 0, 1),
        Ipv4Addr::new(10, 213, 0, 2),
    )?;
    let pins = PinDir::new()?;

    // Load and attach inside the receiving namespace, on its end's ingress.
    let ifname = veth.b.clone();
    let stats = receiver_ns.enter(move || {
        let mut stats = IfStats::load()?;
        stats.attach(&ifname)?;
        Ok(stats)
    })?;
    let ifindex = receiver_ns.ifindex(&veth.b)?;
    let pin = pins.path().join(MAP_NAME);
    stats.pin_map(&pin)?;

    let receiver_addr = SocketAddrV4::new(veth.b_addr, PORT);
    let receiver = receiver_ns.enter(move || {
        let socket = UdpSocket::bind(receiver_addr)?;
        socket.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(socket)
    })?;
    let sender_addr = SocketAddrV4::new(veth.a_addr, 0);
    let sender = sender_ns.enter(move || Ok(UdpSocket::bind(sender_addr)?))?;

    for i in 0..DATAGRAMS {
        sender
            .send_to(PAYLOAD, receiver_addr)
            .with_context(|| format!("sending datagram {i}"))?;
    }
    let mut buf = [0u8; 256];
    for i in 0..DATAGRAMS {
        let (len, _) = receiver
            .recv_from(&mut buf)
            .with_context(|| format!("datagram {i} of {DATAGRAMS} never arrived"))?;
        ensure!(&buf[..len] == PAYLOAD, "datagram {i} arrived corrupted");
    }

    let totals = stats.totals()?;
    let counted = totals
        .get(&ifindex)
        .with_context(|| format!("no counters for {} (ifindex {ifindex}): {totals:?}", veth.b))?;
    eprintln!(
        "ifstats on {} (ifindex {ifindex}): {} packets, {} bytes",
        veth.b, counted.packets, counted.bytes
    );
    ensure!(
        counted.packets >= DATAGRAMS,
        "counted {} packets, sent {DATAGRAMS}",
        counted.packets
    );
    // Each datagram is at least IPv4 (20) + UDP (8) + payload bytes on the wire.
    let min_bytes = DATAGRAMS * (20 + 8 + PAYLOAD.len() as u64);
    ensure!(
        counted.bytes >= min_bytes,
        "counted {} bytes, expected at least {min_bytes}",
        counted.bytes
    );

    // The pinned map is the same map, readable without the loader.
    let pinned = ifstats::read_pinned(&pin)?;
    ensure!(
        pinned.get(&ifindex) == Some(counted),
        "pinned map disagrees: {pinned:?} vs {totals:?}"
    );
    Ok(())
}
