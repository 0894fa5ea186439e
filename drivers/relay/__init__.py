"""Load switches on Modbus TCP relay boards (coils, feedback inputs, comm-loss watchdog)."""
