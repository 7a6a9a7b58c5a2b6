"""Process management, load generator and fakes for `make bench` (see bench/README.md)."""
