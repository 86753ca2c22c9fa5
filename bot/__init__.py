"""showbot core: knows nothing about Discord or Slack."""

__version__ = "0.1.0"
