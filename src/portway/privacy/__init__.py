"""Privacy: retention of stored content, zero retention, user data deletion."""
