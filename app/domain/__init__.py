"""Business rules: the catalog model, the slot grid, holds and availability."""
