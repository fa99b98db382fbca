"""A Salesforce source that refuses to run when the mapping file names a field the org lacks.

The plain source drops fields the org does not have, because the default mapping asks for
picklist code fields that exist only in some orgs. A field named in a mapping file is a
promise: dropping a mistyped routing field would send every contact to the default list (and
remove it from the others), so the run stops instead, naming the line.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dialsync.mapping.file import MappingFile, MappingFileError
from dialsync.settings import SalesforceSettings
from dialsync.sources.salesforce import SalesforceSource


class MappedSalesforceSource(SalesforceSource):
    def __init__(self, settings: SalesforceSettings, mapping: MappingFile, **kw: Any) -> None:
        super().__init__(settings, **kw)
        self.mapping = mapping

    def available(self, wanted: Iterable[str]) -> list[str]:
        errors, _ = self.mapping.check_fields(self.describe_fields())
        if errors:
            raise MappingFileError(self.mapping.path, errors)
        return super().available(wanted)
