"""Redis storage of holds and live appointments: one Lua script per operation."""
