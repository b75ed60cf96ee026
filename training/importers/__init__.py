"""Importers: external data sources mapped onto tijdig's event contract."""

from training.importers.attributes import AttributesConfig, AttributesRejected
from training.importers.monthly_records import (
    RecordsConfig,
    RecordsRejected,
    import_monthly_records,
    is_long_mapping,
)
from training.importers.monthly_statements import (
    MappingConfig,
    MonthlyImport,
    SourceRejected,
    import_monthly_statements,
)
from training.importers.statuses import PRESETS, StatusVocabulary

__all__ = [
    "PRESETS",
    "AttributesConfig",
    "AttributesRejected",
    "MappingConfig",
    "MonthlyImport",
    "RecordsConfig",
    "RecordsRejected",
    "SourceRejected",
    "StatusVocabulary",
    "import_monthly_records",
    "import_monthly_statements",
    "is_long_mapping",
]
