"""Renderers of one assessment document: JSON, Markdown, HTML, JUnit."""
