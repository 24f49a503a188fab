"""The `textzoo` command (`textzoo.cli`). The library is `zoo`; the scripts it runs are `recipes` and `benchmarks`."""
