"""Figures (plotly), frame strips and notebook widgets."""
