"""Real-browser end-to-end tests (JupyterLab + headless Chromium)."""
