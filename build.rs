//! The release server's code laid out in the order of `bench/link-order/triage.txt`:
//! the functions a server runs (starting, then serving each kind of request the API
//! benchmark sends), one after another at the front of the binary, and the code it
//! never runs after them. The kernel maps a program's code 64 KiB around each page
//! it runs, so code spread over the whole binary kept most of it resident.
//! `bench/link-order/collect` writes the list; a function missing from it (new
//! since) is linked among the rest, as it would be without a list.
//!
//! LLD reads the list (`--symbol-ordering-file`): it is Rust's linker on
//! x86_64-unknown-linux-gnu, so only that target's release builds use it.

use std::{env, path::Path};

const ORDER: &str = "bench/link-order/triage.txt";

fn main() {
    println!("cargo::rerun-if-changed={ORDER}");
    let is = |name: &str, value: &str| env::var(name).is_ok_and(|found| found == value);
    let lld_target = is("CARGO_CFG_TARGET_ARCH", "x86_64")
        && is("CARGO_CFG_TARGET_OS", "linux")
        && is("CARGO_CFG_TARGET_ENV", "gnu");
    let order = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join(ORDER);
    if is("PROFILE", "release") && lld_target && order.exists() {
        println!("cargo::rustc-link-arg-bin=triage=-Wl,--symbol-ordering-file={}", order.display());
        // Names the list has and this build does not are expected as the code changes.
        println!("cargo::rustc-link-arg-bin=triage=-Wl,--no-warn-symbol-ordering");
    }
}
