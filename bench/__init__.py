"""Herald's benchmarks: `make bench` (python -m bench) runs every part and reports one table."""
