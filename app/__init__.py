"""holds: keep an appointment slot for one patient while they book, then confirm it or free it."""
