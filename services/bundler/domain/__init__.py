"""The bundler's rules: eligibility (E), niputus (N, J4, D3), TPK (T) and kesto (K).

Pure code only: no I/O, no clock. "Today" is always an argument.
"""
