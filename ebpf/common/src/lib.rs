//! Map key and value types shared by Keelson's BPF programs and user space.
//!
//! This crate is `#![no_std]` so the BPF programs (`ebpf/programs`, target
//! `bpfel-unknown-none`) and the node agent compile the *same* definitions:
//! a map's layout exists once. Every type is `#[repr(C)]`, `Copy`, and has
//! no padding the kernel could leave uninitialised. With the `user` feature
//! the types implement `aya::Pod` so aya's typed maps accept them.
//!
//! One module per program family, named as the program file in
//! `ebpf/programs/src/`.
#![no_std]

pub mod flows;
pub mod ifstats;
pub mod lb;
pub mod nat;
