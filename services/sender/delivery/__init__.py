"""The sender's outbound ports: SMTP and the SMS gateway, one attempt per call, and a
separate retry policy for temporary failures (issue 14)."""
