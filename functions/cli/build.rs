//! Rebuilds `collect` when the standard policy folder changes: it is
//! embedded in the binary (`src/standard.rs`, `include_dir!`), and a
//! proc macro cannot tell Cargo which files it read.

fn main() {
    println!("cargo:rerun-if-changed=../../policy");
    println!("cargo:rerun-if-changed=build.rs");
}
