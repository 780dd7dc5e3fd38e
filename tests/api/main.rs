//! API end-to-end tests (in progress).
