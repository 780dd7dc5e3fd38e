//! Controllers: reconcile loops that drive the cluster toward what its
//! objects ask for. Each reads through the API server's object service and
//! writes back through it; none touches the store.

pub mod namespace;
