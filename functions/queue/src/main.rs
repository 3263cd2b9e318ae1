//! Wiring only: read the settings, build the clients and the router once
//! per container, hand them to the Lambda runtime.

fn main() {}
