"""The benchmark: this bot against the naive way, measured in the same run.

``python -m bench.run`` starts the proxy simulator and the Discord double in-process, runs the real
bot (``python -m bot run``) and the naive bot (:mod:`bench.naive_bot`) as child processes, one
scenario at a time with fresh servers and a fresh database, and prints one table (also written to
``bench/results.md``). ``--quick`` is a smoke run with small sizes.
"""
