"""`holds loadtest`: an open-loop load generator for the complete booking flow."""
