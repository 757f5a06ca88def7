//! Gratuitous ARP: tells a segment that an IPv4 address now lives at a MAC.
//!
//! Neutron hands a freed address out again at once. A peer that talked to
//! the previous holder may keep its MAC for up to 45 s (a REACHABLE
//! neighbour entry, which ICMP does not refresh), and with OVN the new
//! holder's own ARP requests are answered by the switch, so the peer never
//! hears of the change: it answers into the void. A gratuitous ARP request
//! (sender and target both the address) is flooded to the segment and
//! updates the peers' existing entries, as the reference CNI bridge plugin
//! does after ADD.

use std::ffi::CString;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::libc;

use crate::{validate_ifname, Error, MacAddr, Netns, Result};

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IP: u16 = 0x0800;
const ARP_REQUEST: u16 = 1;
const HW_ETHERNET: u16 = 1;
const BROADCAST: [u8; 6] = [0xff; 6];

/// The Ethernet frame of a gratuitous ARP request from `mac` for `ip`.
pub fn gratuitous_arp_frame(mac: MacAddr, ip: Ipv4Addr) -> [u8; 42] {
    let mut frame = [0u8; 42];
    frame[0..6].copy_from_slice(&BROADCAST);
    frame[6..12].copy_from_slice(&mac.octets());
    frame[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    frame[14..16].copy_from_slice(&HW_ETHERNET.to_be_bytes());
    frame[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
    frame[18] = 6; // hardware address length
    frame[19] = 4; // protocol address length
    frame[20..22].copy_from_slice(&ARP_REQUEST.to_be_bytes());
    frame[22..28].copy_from_slice(&mac.octets());
    frame[28..32].copy_from_slice(&ip.octets());
    // Target hardware address stays zero: nobody is asked.
    frame[38..42].copy_from_slice(&ip.octets());
    frame
}

/// Sends one gratuitous ARP for `ip` from `mac` out of `ifname`, in `netns`
/// (or the host's namespace). The link must be up.
pub async fn send_gratuitous_arp(
    netns: Option<&Netns>,
    ifname: &str,
    mac: MacAddr,
    ip: Ipv4Addr,
) -> Result<()> {
    validate_ifname(ifname)?;
    let ifname = ifname.to_string();
    let send = move || send_blocking(&ifname, mac, ip);
    match netns {
        // The socket must be made in the namespace of the link.
        Some(ns) => ns.run_in(send).await,
        None => tokio::task::spawn_blocking(send).await.map_err(|e| Error::Io {
            op: "gratuitous ARP task".into(),
            source: std::io::Error::other(e),
        })?,
    }
}

fn send_blocking(ifname: &str, mac: MacAddr, ip: Ipv4Addr) -> Result<()> {
    let os_error = |op: &str| Error::Io {
        op: format!("{op} {ifname}"),
        source: std::io::Error::last_os_error(),
    };
    let name = CString::new(ifname)
        .map_err(|_| Error::InvalidName { name: ifname.to_string(), reason: "contains NUL" })?;
    // SAFETY: `name` is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(os_error("looking up"));
    }
    // Protocol 0: the socket only sends, it never receives.
    // SAFETY: socket(2) has no memory arguments; the fd is owned at once.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(os_error("opening a packet socket for"));
    }
    // SAFETY: `raw` is a fresh, valid descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = ETH_P_ARP.to_be();
    addr.sll_ifindex = i32::try_from(index).map_err(|_| Error::InvalidValue {
        what: "interface index",
        value: index.to_string(),
        reason: format!("of {ifname}, out of range"),
    })?;
    addr.sll_halen = 6;
    addr.sll_addr[..6].copy_from_slice(&BROADCAST);
    let frame = gratuitous_arp_frame(mac, ip);
    // SAFETY: `frame` and `addr` outlive the call; the lengths are theirs.
    let sent = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(os_error("sending a gratuitous ARP on"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_is_a_broadcast_arp_request_for_its_own_address() {
        let mac = MacAddr([0xfa, 0x16, 0x3e, 0x01, 0x02, 0x03]);
        let ip = Ipv4Addr::new(10, 0, 0, 7);
        let f = gratuitous_arp_frame(mac, ip);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &mac.0);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[14..22], &[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
        assert_eq!(&f[22..28], &mac.0, "sender MAC");
        assert_eq!(&f[28..32], &[10, 0, 0, 7], "sender IP");
        assert_eq!(&f[32..38], &[0; 6], "target MAC");
        assert_eq!(&f[38..42], &[10, 0, 0, 7], "target IP = sender IP");
    }
}
