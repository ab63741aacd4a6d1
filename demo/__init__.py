"""The demo: a generated data set walked through a half-year of the running system.

`scripts/demo` (python -m demo): see README, "Demo".
"""
