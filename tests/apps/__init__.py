"""Tests of the Panel dashboard: page logic (no browser) and the served app in headless Chromium."""
