"""Context-window management: fit a chat prompt to the smallest window it may meet."""
