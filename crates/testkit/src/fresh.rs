//! Fresh names and address ranges, so parallel tests never collide.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// `n` random hex digits.
pub fn hex(n: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::new();
    while out.len() < n {
        let h = RandomState::new().hash_one((
            SystemTime::now(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
        ));
        out.push_str(&format!("{h:016x}"));
    }
    out.truncate(n);
    out
}

/// A fresh temp dir `<prefix>-<hex>`, made; returns the hex (to name the
/// test's other objects after) and the dir.
pub fn fresh_dir(prefix: &str) -> (String, PathBuf) {
    let suffix = hex(8);
    let dir = std::env::temp_dir().join(format!("{prefix}-{suffix}"));
    std::fs::create_dir_all(&dir).expect("a test dir");
    (suffix, dir)
}

/// A random UUID-shaped id, as Neutron writes its ids (no Neutron object
/// has it).
pub fn fresh_uuid() -> String {
    let h = hex(32);
    [&h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]].join("-")
}

/// A fresh IPv4 /24 (as `a.b.c`, without the last octet), unique in this
/// run and unlikely to collide with anything else on the stack: the tests
/// use 10.128.0.0/9, the default pool `kuryr` is 10.10.0.0/16.
pub fn fresh_v4() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(u64::MAX);
    let base = {
        let seed = u64::from_str_radix(&hex(8), 16).expect("hex") % (120 * 256);
        let _ = NEXT.compare_exchange(u64::MAX, seed, Ordering::SeqCst, Ordering::SeqCst);
        NEXT.fetch_add(1, Ordering::SeqCst)
    };
    let n = base % (120 * 256);
    format!("10.{}.{}", 130 + n / 256, n % 256)
}

/// A fresh IPv6 /64 prefix (`fdXX:X:X:X`, use with `::/64`), written as
/// Neutron and Docker write it (no leading zeros, no zero group).
pub fn fresh_v6() -> String {
    let h = hex(14);
    let group = |s: &str| u16::from_str_radix(s, 16).expect("hex") | 1;
    format!("fd{}:{:x}:{:x}:{:x}", &h[..2], group(&h[2..6]), group(&h[6..10]), group(&h[10..14]))
}

/// Whether IPv4 cidr `inner` lies inside `outer` (false for anything else).
pub fn v4_cidr_contains(outer: &str, inner: &str) -> bool {
    let parse = |c: &str| -> Option<(u32, u32)> {
        let (addr, len) = c.split_once('/')?;
        let addr: std::net::Ipv4Addr = addr.parse().ok()?;
        let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
        Some((u32::from(addr), len))
    };
    let (Some((o, ol)), Some((i, il))) = (parse(outer), parse(inner)) else {
        return false;
    };
    let mask = |len: u32| u32::MAX.checked_shl(32 - len).unwrap_or(0);
    il >= ol && (o & mask(ol)) == (i & mask(ol))
}

/// A loopback TCP port free at the time of the call (the OS picks it).
pub fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}
