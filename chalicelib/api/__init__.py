"""One Chalice blueprint per API face; shared request/response plumbing in http.py."""
