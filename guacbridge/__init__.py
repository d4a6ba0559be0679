"""guacbridge: one-time browser consoles through guacd, beside Apache Guacamole."""

__version__ = "0.1.0"
