"""Study reports: parallel coordinates, importances, learning curves, monitoring and sample grids → HTML."""

from hpsearch.reports.build import Report, build_report

__all__ = ["Report", "build_report"]
