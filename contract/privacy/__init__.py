"""Privacy rules both sides apply: personal-data detectors, IP and URI masking, processing
rules, display masking. Pure functions only (no I/O), so the log forwarder (capture), a node's
ingest and storage, and every read path (display) mask the same way."""
