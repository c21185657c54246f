"""The Batch API: a JSONL file of requests in, each line a call through the one door."""
