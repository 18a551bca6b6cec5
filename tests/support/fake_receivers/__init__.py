"""Local stand-ins for the outside services the notifier talks to: an HTTP receiver and an SMTP server."""
