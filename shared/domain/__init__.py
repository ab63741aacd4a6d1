"""Rules of työelämäpalaute that several services need (see /docs/rules.md).

Pure code only: no I/O, no clock. "Today" is always an argument.
"""
