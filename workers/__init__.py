"""arq workers: durable appointments, expiry cleanup, and the sweeps that back both up."""
