"""Real servers that tests and benchmarks run privately on 127.0.0.1."""
