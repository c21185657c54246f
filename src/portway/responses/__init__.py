"""The Responses and Conversations APIs: engine, services and background workers."""
