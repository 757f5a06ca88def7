use super::*;
use rtnetlink::packet_core::ErrorMessage;
use std::num::NonZeroI32;

fn nl_error(errno: i32) -> rtnetlink::Error {
    let mut msg = ErrorMessage::default();
    msg.code = NonZeroI32::new(-errno);
    rtnetlink::Error::NetlinkError(msg)
}

#[test]
fn create_error_mapping() {
    let e = create_error("vlan (8021q)", "v100", nl_error(libc::EOPNOTSUPP));
    assert!(matches!(e, Error::Unsupported { feature: "vlan (8021q)", .. }));
    assert!(e.to_string().starts_with("kernel lacks vlan (8021q) support"), "{e}");
    let e = create_error("ipvlan", "ipv0", nl_error(libc::EOPNOTSUPP));
    assert!(e.to_string().starts_with("kernel lacks ipvlan support"), "{e}");
    let e = create_error("veth", "tap0", nl_error(libc::EEXIST));
    assert!(matches!(e, Error::LinkExists { ref name } if name == "tap0"));
    let e = create_error("veth", "tap0", nl_error(libc::EPERM));
    assert_eq!(e.errno(), Some(libc::EPERM));
}

#[test]
fn scope_values() {
    assert_eq!(Scope::from(0), Scope::Universe);
    assert_eq!(Scope::from(253), Scope::Link);
    assert_eq!(Scope::from(254), Scope::Host);
    assert_eq!(Scope::from(7), Scope::Other(7));
}
