//! Keelson's control plane (`keelson-server`): the Kubernetes API server,
//! its state store (embedded SQLite by default, etcd when one machine is
//! outgrown), the scheduler and the controllers.
//!
//! Modules join here as they land: `apiserver/`, `storage/`, `registry/`,
//! `scheduler/`, `controllers/`. Data flows one way: store → API → watch →
//! controllers and agents → API.
