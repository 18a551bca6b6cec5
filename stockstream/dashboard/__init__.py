"""The live dashboard: static files only (``static/``), served by ``stockstream serve`` at ``/``."""
