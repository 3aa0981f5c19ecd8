"""Remote support at Mission Control: access requests and their grants, commands queued for a
cluster, what heartbeat replies carry, the decisions, results and keys clusters send back, and
each cluster's signed audit checkpoints.
"""
