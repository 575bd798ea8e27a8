
//! In-memory simulator of Redis Cluster state for planner property tests.
