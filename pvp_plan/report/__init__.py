"""The self-contained HTML report (images embedded as base64 PNG, responsive for phones)."""

from pvp_plan.report.html import render_report_html

__all__ = ["render_report_html"]
