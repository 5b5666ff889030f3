//! Backend trait (etcd-shaped KV with revisions, txn, leases, watch) with SQLite and memory implementations.
