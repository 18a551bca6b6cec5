"""Event schemas and the topic registry: the contract between every stockstream service."""
