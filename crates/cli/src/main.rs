//! The `buildr` command-line tool: argument parsing and rendering over the
//! `buildr` library. The work lives in the library.

fn main() {}
