"""Benchmarks behind ``petcad bench NAME``: each module defines ``HELP``, ``add_arguments(parser)`` and ``run(args)``.

Benchmarks print figures (and one JSON object with ``--json``); they are commands, not timed tests.
"""

BENCHMARKS = ("patches", "model", "phantom", "features", "segment")
