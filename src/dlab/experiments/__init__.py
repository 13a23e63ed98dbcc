"""One module per experiment; each program is an `Implementation` (config, run, profiles)."""
