//! Datapath end-to-end tests: real BPF programs in the real kernel, inside
//! network namespaces made for each test.

mod ifstats;
mod nodeport;
mod route;
mod sock_lb;
