//! Keelson's control plane (`keelson-server`): the Kubernetes API server,
//! its state store (embedded SQLite by default, etcd when one machine is
//! outgrown), the scheduler and the controllers.
//!
//! Data flows one way: store → API → watch → controllers and agents → API.
//! Only [`apiserver`] touches [`storage`].

pub mod apiserver;
pub mod controllers;
pub mod registry;
pub mod storage;
