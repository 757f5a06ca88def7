# Sourced by deploy/docker-plugin/build and deploy/kubernetes/build-image:
# the static Kuryr binaries and what a static glibc still loads, in a rootfs.

# static_kuryr PROFILE PACKAGE: builds PACKAGE's binaries static (crt-static)
# and prints the directory they are in.
static_kuryr() {
    local profile=$1 package=$2 triple=x86_64-unknown-linux-gnu flags
    flags=(--target "$triple" -p "$package")
    [[ $profile == release ]] && flags+=(--release)
    (cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" cargo build "${flags[@]}" >&2)
    echo "${CARGO_TARGET_DIR:-$repo/target}/$triple/$profile"
}

# require_static BINARY: refuses a dynamically linked binary.
require_static() {
    if readelf -l "$1" | grep -q INTERP; then
        echo "build: $1 is dynamically linked; the rootfs needs a static one" >&2
        exit 1
    fi
}

# rootfs_base DIR: CA bundle, hosts, nsswitch and the NSS modules a static
# glibc still loads for name lookups.
rootfs_base() {
    local rootfs=$1 lib src
    mkdir -p "$rootfs"/{etc/ssl/certs,tmp,proc,sys,dev}
    [[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
    printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
    printf '127.0.0.1 localhost\n::1 localhost\n' >"$rootfs/etc/hosts"
    for lib in libnss_files.so.2 libnss_dns.so.2 libresolv.so.2 libc.so.6; do
        src=/lib/x86_64-linux-gnu/$lib
        [[ -e $src ]] && install -D "$src" "$rootfs/lib/x86_64-linux-gnu/$lib"
    done
    [[ -e /lib64/ld-linux-x86-64.so.2 ]] && install -D /lib64/ld-linux-x86-64.so.2 "$rootfs/lib64/ld-linux-x86-64.so.2"
    return 0
}
