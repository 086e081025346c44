"""Webhooks: endpoints an organisation registers, the events sent to them, and where they may go."""
