"""Pure DataFrame -> DataFrame transforms: no sessions, no I/O, no config parsing."""
