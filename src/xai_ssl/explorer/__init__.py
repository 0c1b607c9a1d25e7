"""The results explorer: one self-contained, offline HTML page per dataset x model (see docs/explorer.md)."""

from xai_ssl.explorer.data import ExplorerData, MethodMaps
from xai_ssl.explorer.files import (
    BASELINE_METHODS,
    base_cosines,
    explorer_data_from_files,
)
from xai_ssl.explorer.writer import write_explorer

__all__ = ["BASELINE_METHODS", "ExplorerData", "MethodMaps", "base_cosines", "explorer_data_from_files", "write_explorer"]
