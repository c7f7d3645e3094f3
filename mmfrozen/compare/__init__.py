"""Side-by-side comparison of finished runs (``tools/compare.py``)."""
from .run_summary import RunSummary, load_run
from .table import ComparisonTable, build_table

__all__ = ['RunSummary', 'load_run', 'ComparisonTable', 'build_table']
