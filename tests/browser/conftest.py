"""The browser tests' fixtures (tests/support/browser.py): ``browser``, ``page`` and ``page_log``."""

from tests.support.browser import browser, page, page_log  # noqa: F401 - fixtures, registered here
