//! The safety net under the load balancer: an `unreachable` route for the
//! service CIDR, so a packet to a VIP that no BPF program translated is
//! refused on this host (EHOSTUNREACH) instead of following the default
//! route out of the machine. Installed with rtnetlink in the calling
//! thread's network namespace; replacing keeps it idempotent.

use std::net::Ipv4Addr;

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::{
    RouteMessageBuilder,
    packet_route::route::{RouteProtocol, RouteType},
};
use thiserror::Error;
use tracing::info;

#[derive(Debug, Error)]
pub enum RouteError {
    #[error("opening a netlink socket: {0}")]
    Connection(#[source] std::io::Error),
    #[error("installing the unreachable route for {cidr}: {source}")]
    Add {
        cidr: Ipv4Net,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("listing routes: {0}")]
    List(#[source] rtnetlink::Error),
    #[error("removing the unreachable route for {cidr}: {source}")]
    Del {
        cidr: Ipv4Net,
        #[source]
        source: rtnetlink::Error,
    },
}

fn message(cidr: Ipv4Net) -> rtnetlink::packet_route::route::RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(cidr.network(), cidr.prefix_len())
        .kind(RouteType::Unreachable)
        .protocol(RouteProtocol::Static)
        .build()
}

fn connect() -> Result<rtnetlink::Handle, RouteError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(RouteError::Connection)?;
    tokio::spawn(connection);
    Ok(handle)
}

/// Installs (or replaces) `unreachable <cidr>` in the main table.
pub async fn ensure_unreachable(cidr: Ipv4Net) -> Result<(), RouteError> {
    let handle = connect()?;
    handle
        .route()
        .add(message(cidr))
        .replace()
        .execute()
        .await
        .map_err(|source| RouteError::Add { cidr, source })?;
    info!(%cidr, "unreachable route for the service CIDR in place");
    Ok(())
}

/// Whether `unreachable <cidr>` is installed.
pub async fn has_unreachable(cidr: Ipv4Net) -> Result<bool, RouteError> {
    let handle = connect()?;
    let mut routes = handle
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(route) = routes.try_next().await.map_err(RouteError::List)? {
        let header = &route.header;
        if header.kind != RouteType::Unreachable
            || header.destination_prefix_length != cidr.prefix_len()
        {
            continue;
        }
        let destination = route.attributes.iter().find_map(|a| match a {
            rtnetlink::packet_route::route::RouteAttribute::Destination(
                rtnetlink::packet_route::route::RouteAddress::Inet(ip),
            ) => Some(*ip),
            _ => None,
        });
        if destination == Some(cidr.network()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Removes the route (e.g. when the proxy is uninstalled).
pub async fn remove_unreachable(cidr: Ipv4Net) -> Result<(), RouteError> {
    let handle = connect()?;
    handle
        .route()
        .del(message(cidr))
        .execute()
        .await
        .map_err(|source| RouteError::Del { cidr, source })
}
