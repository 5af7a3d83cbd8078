"""Pure decisions: route match, path normalization, DLP, SSRF, git push and ref rules.

Nothing here does I/O or imports mitmproxy, a backend, or a provider.
"""
