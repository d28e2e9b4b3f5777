"""The e-mail reply ingester: replies to the mail sent become actions (``escalate mail ingest``)."""
