"""Root conftest: registers the browser fixtures (tests/browser.py) for every test module."""

pytest_plugins = ["tests.browser"]
