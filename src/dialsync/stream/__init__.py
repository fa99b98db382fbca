"""The change feed: Salesforce Change Data Capture events over the Pub/Sub API (gRPC).

Events are hints: they say which contacts changed; the engine re-reads those contacts and
decides, exactly as the poll does (README, "Streaming").
"""
