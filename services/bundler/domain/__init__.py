"""The bundler's rules: eligibility (E), jatkumo (J4), niputus (N, D3), TPK (T), kesto (K).

Pure code only: no I/O, no clock. "Today" is always an argument.
"""
