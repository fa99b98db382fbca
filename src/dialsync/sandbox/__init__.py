"""Loopback fakes of Salesforce and the dialers, for the demo, the tests and the benchmarks.

They follow ``shared/reference/`` (errors and paging included) so that the real clients
(simple-salesforce, httpx) are exercised over real HTTP.
"""
