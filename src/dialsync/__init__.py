"""dialsync: keep dialer record lists in step with Salesforce Contacts."""

from __future__ import annotations

__version__ = "0.1.0"
