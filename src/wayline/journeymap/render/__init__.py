"""Renderers of the journey map: Markdown, HTML (one self-contained page), CSV, JSON, and PNG /
PDF printed from the HTML by headless Chromium."""
