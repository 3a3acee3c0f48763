"""The study report: tables, plots and one self-contained HTML file.

Renders the StudyResults of :func:`squeezelab.explore.load_study_results` (it computes
no costs itself). ``render_report(results, "report.html")`` is the entry point; plots
follow SqueezeNet's Figure 3 sweeps (Iandola et al. 2016, arXiv 1602.07360).
"""

from squeezelab.report.html import render_html, render_report, render_section

__all__ = ["render_html", "render_report", "render_section"]
