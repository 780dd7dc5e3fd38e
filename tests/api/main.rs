//! API end-to-end tests: a real `keelson-server` process driven by real
//! clients — kubectl, the official Python client, curl.

mod crash;
mod errors;
mod etcd;
mod kubectl;
mod python;
mod watch;
