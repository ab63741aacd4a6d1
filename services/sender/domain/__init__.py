"""The sender's rules: reminders and resends (S3, S4) and message texts (S5).

Pure code only: no I/O but reading the packaged templates, no clock.
"""
