"""Importers: external data sources mapped onto tijdig's event contract."""

from training.importers.monthly_statements import (
    MappingConfig,
    MonthlyImport,
    SourceRejected,
    import_monthly_statements,
)

__all__ = ["MappingConfig", "MonthlyImport", "SourceRejected", "import_monthly_statements"]
