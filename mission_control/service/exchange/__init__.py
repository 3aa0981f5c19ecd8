"""What clusters send: each leader's messages fenced by epoch, deduplicated and written by group
commit (`ingest`, `batcher`), what each kind does (`cluster_messages`), the alerts they leave
(`alert_store`) and the periodic sweep for alerts that time raises (`monitor`).
"""
