"""Local development stacks: a real ZooKeeper ensemble, cluster nodes and their neighbours,
started as plain processes on loopback (used by `managed dev up` and the test fixtures)."""
